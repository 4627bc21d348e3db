# The labctl tools image. labctl builds it locally (no registry needed) from
# this file and the statically linked tools, tagged by a hash of both:
# labctl-tools:<hash>. Nodes without their own `image` run it; nodes with
# one get /lab/bin mounted from it (see docs/runtime.md). The context holds
# this file and the tools of src/tools/mod.rs's TOOLS, all named lab-*.
FROM scratch
COPY lab-* /lab/bin/
# WORKDIR creates the directory: scratch has no shell to run mkdir.
WORKDIR /lab/out
ENV PATH=/lab/bin
ENTRYPOINT ["/lab/bin/lab-init"]
