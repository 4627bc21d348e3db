#!/usr/bin/env python3
"""An XDP drop on one interface, for as long as this process lives.

    ip netns exec NS python3 ci/benchlib/xdpdrop.py IFACE

Loads a two-instruction XDP program (r0 = XDP_DROP; exit) through the bare
bpf(2) syscall (no clang, no bpftool), attaches it in native mode through
a BPF link, prints `attached IFACE`, and waits for SIGINT or SIGTERM. The link is a file descriptor: the program is
detached when the process ends, however it ends (SIGKILL included), so it
leaves nothing attached and pins nothing.

The peer of a veth with an XDP program takes XDP frames (lab-gen's live
frames) as well as skbs (trafgen's AF_PACKET frames): one sink for both
generators, counted by the veth in `ethtool -S` (`rx_queue_N_xdp_drops`).
"""

import ctypes
import os
import signal
import socket
import struct
import sys

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_DROP = 1

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = libc.syscall(SYS_BPF, cmd, buf, len(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return ret


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: xdpdrop.py IFACE", file=sys.stderr)
        return 2
    iface = sys.argv[1]
    ifindex = socket.if_nametoindex(iface)
    insns = struct.pack("<BBhi", 0xB7, 0x00, 0, XDP_DROP) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    insns_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack(
        "<IIQQIIQII16sII",
        BPF_PROG_TYPE_XDP,
        2,
        ctypes.addressof(insns_buf),
        ctypes.addressof(license_buf),
        0,
        0,
        0,
        0,
        0,
        b"bench_xdp_drop",
        0,
        BPF_XDP,
    )
    prog = bpf(BPF_PROG_LOAD, attr)
    link = bpf(BPF_LINK_CREATE, struct.pack("<IIII", prog, ifindex, BPF_XDP, XDP_FLAGS_DRV_MODE))
    print(f"attached {iface}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except (KeyboardInterrupt, SystemExit):
        pass
    os.close(link)
    os.close(prog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
