#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/seeds/TARGET/.

    fuzz/seeds/make.py [PCAP...]

Sources: the lab files of labs/ and tests/labs/ (lab_file); frames as the
tools send them, and any pcap files given, such as lab-capture's of a lab
run (tool_*); this host's own netlink dumps of routes, qdiscs, links and
addresses in a namespace of its own (netlink; so run it as root); valid ring layouts with plain traffic (ring_*); a
few reports (report). The seeds are committed: run this again only to
change them. The tool targets' input format is in fuzz/src/lib.rs
(`records`).
"""

import glob
import os
import shutil
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

ME_MAC = bytes.fromhex("020000000002")
PEER_MAC = bytes.fromhex("020000000001")
ME_IP = bytes([198, 18, 0, 2])
PEER_IP = bytes([198, 18, 0, 1])
BROADCAST = b"\xff" * 6


def target_dir(target):
    path = os.path.join(HERE, target)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(target, name, data):
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def ipv4(src, dst, proto, payload, ident=1, flags=0x4000):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", csum(header)) + header[12:]
    return header + payload


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def arp(op, sender_mac, sender_ip, target_mac, target_ip):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sender_mac, sender_ip, target_mac, target_ip)


def icmp_echo(kind, ident, seq, payload):
    message = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + payload
    return message[:2] + struct.pack("!H", csum(message)) + message[4:]


def udp(src_ip, dst_ip, sport, dport, payload):
    length = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    check = csum(pseudo + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, check) + payload


def lab_gen(seq, session=0x1234, sent_ns=999_000_000, size=64, sport=40000, dport=9000):
    payload = b"LGN1" + struct.pack("!IIQ", session, seq, sent_ns)
    payload += b"\0" * max(0, size - 42 - len(payload))
    return eth(ME_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, ME_IP, 17, udp(PEER_IP, ME_IP, sport, dport, payload)))


def tcp_syn():
    header = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 0x50, 0x02, 65535, 0, 0)
    return eth(ME_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, ME_IP, 6, header))


def ipv6_echo():
    src = bytes.fromhex("fe800000000000000000000000000001")
    dst = bytes.fromhex("fe800000000000000000000000000002")
    body = struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"ping"
    header = struct.pack("!IHBB16s16s", 0x60000000, len(body), 58, 64, src, dst)
    return eth(ME_MAC, PEER_MAC, 0x86DD, header + body)


def frames():
    """Frames of every kind the tools meet, by name."""
    echo = eth(ME_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, ME_IP, 1, icmp_echo(8, 0x4242, 1, bytes(range(56)))))
    bad_checksum = bytearray(echo)
    bad_checksum[-1] ^= 0xFF
    vlan = BROADCAST + PEER_MAC + b"\x81\x00\x00\x05\x08\x06" + arp(1, PEER_MAC, PEER_IP, b"\0" * 6, ME_IP)
    return {
        "arp-request": eth(BROADCAST, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, b"\0" * 6, ME_IP)),
        "arp-reply": eth(PEER_MAC, ME_MAC, 0x0806, arp(2, ME_MAC, ME_IP, PEER_MAC, PEER_IP)),
        "arp-other": eth(BROADCAST, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, b"\0" * 6, bytes([198, 18, 0, 9]))),
        "echo-request": echo,
        "echo-bad-checksum": bytes(bad_checksum),
        "echo-reply": eth(PEER_MAC, ME_MAC, 0x0800, ipv4(ME_IP, PEER_IP, 1, icmp_echo(0, 0x4242, 1, b"x" * 8))),
        "fragment": eth(ME_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, ME_IP, 1, icmp_echo(8, 1, 1, b"y" * 16), flags=0x2000)),
        "lab-gen": lab_gen(0),
        "tcp-syn": tcp_syn(),
        "ipv6-echo": ipv6_echo(),
        "vlan-arp": vlan,
        "runt": echo[:20],
    }


def record(frame, out=False, fix=False, outcome=0, after_us=10):
    flags = (1 if out else 0) | (2 if fix else 0) | (outcome << 2)
    return struct.pack("!BHH", flags, len(frame), after_us) + frame


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    at, found = 24, []
    while at + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        found.append(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
    return found


def tools(pcaps):
    named = frames()
    captured = [f for path in pcaps for f in pcap_frames(path)]
    for target in ("tool_pong", "tool_sink", "tool_fwd", "tool_capture"):
        target_dir(target)
        for name, frame in named.items():
            write(target, name, b"\0" + record(frame))
        write(target, "all-json", b"\x01" + b"".join(record(f) for f in named.values()))
        write(target, "all-out", b"\x02" + b"".join(record(f, out=True, outcome=i % 4) for i, f in enumerate(named.values())))
        if captured:
            for start in range(0, min(len(captured), 256), 32):
                chunk = captured[start:start + 32]
                write(target, "captured-%03d" % start, b"\x01" + b"".join(record(f) for f in chunk))
    # lab-sink: flows with gaps, duplicates, reordering, two sessions, a
    # 32-bit wrap, with and without intervals.
    seqs = [0, 1, 2, 4, 3, 3, 7, 8, 0xFFFFFFFE, 0xFFFFFFFF, 0, 1]
    flow = b"".join(record(lab_gen(s), fix=True, after_us=300) for s in seqs)
    other = b"".join(record(lab_gen(s, session=7, dport=9001), fix=True, after_us=50) for s in range(6))
    write("tool_sink", "flows", b"\x00" + flow + other)
    write("tool_sink", "flows-intervals", b"\x05" + flow + other)
    write("tool_sink", "arp-and-flows", b"\x03" + record(named["arp-request"]) + flow)


def netlink_dump(msg_type, family_payload):
    """The reply datagrams of one dump request on this host."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    header = struct.pack("=LHHLL", 16 + len(family_payload), msg_type, 0x301, 1, 0)
    sock.send(header + family_payload)
    datagrams = []
    while True:
        data = sock.recv(65536)
        datagrams.append(data)
        done = False
        at = 0
        while at + 16 <= len(data):
            length, kind = struct.unpack("=LH", data[at:at + 6])
            if kind in (2, 3):  # NLMSG_ERROR, NLMSG_DONE
                done = True
            if length < 16:
                break
            at += (length + 3) & ~3
        if done or len(datagrams) > 16:
            return datagrams


# The namespace the dumps are taken in: a veth pair, addresses, routes of
# each kind (a gateway, a multipath, a blackhole) and qdiscs (tbf,
# netem where the kernel has it, clsact), all in 198.18.0.0/15.
NETNS_SETUP = """
ip link add fz0 type veth peer name fz1
ip link set fz0 up
ip link set fz1 up
ip link set lo up
ip addr add 198.18.0.2/24 dev fz0
ip addr add 198.18.1.2/24 dev fz1
ip route add 198.18.9.0/24 via 198.18.0.1 metric 20
ip route add 198.18.10.0/24 nexthop via 198.18.0.1 dev fz0 nexthop via 198.18.1.1 dev fz1
ip route add blackhole 198.18.11.0/24
ip route add unreachable 198.18.12.0/24
ip route add 198.18.13.0/24 dev fz0 table 100
ip route add default via 198.18.0.1 src 198.18.0.2
tc qdisc add dev fz0 root tbf rate 100mbit burst 32k latency 10ms
tc qdisc add dev fz1 clsact
tc qdisc add dev fz1 root netem delay 10ms
"""


def in_lab_namespace(then):
    """Runs `then` in a network namespace of its own (root only)."""
    import subprocess
    name = "fuzzseed%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for line in NETNS_SETUP.strip().splitlines():
            # netem may be missing from the kernel: the others still count.
            subprocess.run(["ip", "netns", "exec", name] + line.split(), check=False)
        with open("/run/netns/" + name) as ns:
            os.setns(ns.fileno(), os.CLONE_NEWNET) if hasattr(os, "setns") else _setns(ns.fileno())
        then()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _setns(fd):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def netlink():
    target_dir("netlink")
    rtm = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
    tcm = struct.pack("=BBHiIII", 0, 0, 0, 0, 0, 0, 0)
    ifi = struct.pack("=BBHiII", 0, 0, 0, 0, 0, 0)
    ifa = struct.pack("=BBBBI", 0, 0, 0, 0, 0)
    # The first byte picks the dump (0 routes, 1 qdiscs, 2 links) and, for
    # qdiscs, the interface (byte >> 2): the one with a tbf.
    fz0 = socket.if_nametoindex("fz0")
    for name, kind, request, which in (
        ("routes", 26, rtm, 0),
        ("qdiscs", 38, tcm, 1 | (fz0 << 2)),
        ("links", 18, ifi, 2),
        ("addresses", 22, ifa, 2),
    ):
        for i, datagram in enumerate(netlink_dump(kind, request)):
            write("netlink", "%s-%d" % (name, i), bytes([which]) + datagram)


def rings():
    # ring_netmap: geometry (tx, rx, slots, buffer size), then operations
    # of 8 bytes: locate, look, push, receive, release.
    target_dir("ring_netmap")
    ops = [
        bytes([2, 0, 0, 0, 0, 0, 0, 0]),
        bytes([3, 0, 0, 0, 0, 0, 0, 0]),
        bytes([7, 60, 0, 0, 0, 0, 0, 0]),
        bytes([3, 0, 0, 0, 0, 0, 1, 0]),
        bytes([4, 0, 0, 0, 0, 0, 1, 0]),
        bytes([6, 0, 0, 0, 0, 1, 1, 0]),
    ]
    write("ring_netmap", "plain", bytes([1, 1, 8, 1]) + b"".join(ops))
    # A write to the first RX ring's tail (its header, after the
    # netmap_if pool of 4096 bytes), then a receive.
    tail = bytes([0 | (4 << 3), 0x10, 0x10, 0, 3, 0, 0, 0])
    write("ring_netmap", "tail", bytes([0, 0, 6, 0]) + tail + bytes([4, 0, 0, 0, 0, 0, 1, 0]))
    # ring_af_xdp: operations of 8 bytes.
    target_dir("ring_af_xdp")
    deliver = bytes([0, 60, 0, 0, 0, 0, 0xAB, 0])
    receive = bytes([5, 0, 0, 0, 0, 0, 0, 0])
    recycle = bytes([7, 0, 0, 0, 0, 0, 0, 0])
    send = bytes([8, 70, 0, 0, 0, 0, 0xCD, 0])
    transmit = bytes([1, 0, 0, 0, 0, 0, 0, 0])
    batch = bytes([9, 0, 1, 0, 0, 0, 5, 0])
    write("ring_af_xdp", "round-trip", (deliver + receive + recycle + receive + send + transmit) * 6 + batch + transmit * 5)
    completion = bytes([3, 0, 0x40, 0, 0, 3, 0, 0]) + bytes([2, 1, 0, 0, 0, 3, 0, 0])
    write("ring_af_xdp", "hostile-completion", send + completion + send * 5)


def reports():
    target_dir("report")
    import random
    rng = random.Random(28)
    texts = [b"64 bytes from 198.18.0.2\n", b"\x1b[31mred\x1b[0m <b>&amp;</b> ]]>\x00\x01\x0b\xef\xbf\xbe\n", "é€😀\r\n".encode()]
    for i in range(6):
        data = b"".join(rng.choice(texts) + bytes(rng.randrange(256) for _ in range(rng.randrange(8, 64))) for _ in range(8))
        write("report", "report-%d" % i, data)


def labs():
    target_dir("lab_file")
    paths = sorted(glob.glob(os.path.join(ROOT, "labs", "*.yaml")))
    paths += sorted(glob.glob(os.path.join(ROOT, "labs", "*", "*.yaml")))
    paths += sorted(glob.glob(os.path.join(ROOT, "tests", "labs", "**", "*.yaml"), recursive=True))
    for path in paths:
        name = os.path.relpath(path, ROOT).replace("/", "_")
        shutil.copy(path, os.path.join(HERE, "lab_file", name))


if __name__ == "__main__":
    labs()
    tools(sys.argv[1:])
    in_lab_namespace(netlink)
    rings()
    reports()
