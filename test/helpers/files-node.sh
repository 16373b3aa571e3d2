#!/bin/sh
# Test only. Run as: unshare -m --propagation private -- sh files-node.sh SCRATCH SEED COMMAND [ARGS...]
# A "files-only" node: inside this private mount namespace /etc/kubernetes and /var/lib/kubelet
# are fresh tmpfs mounts filled from SEED/kubernetes and SEED/kubelet, so every node started
# this way has its own files. /etc and /var/lib get throwaway overlays (upper layers on a tmpfs
# at SCRATCH) so the mount points can exist without creating anything on the host.
set -eu
scratch=$1
seed=$2
shift 2
mkdir -p "$scratch"
mount -t tmpfs -o mode=0700 tmpfs "$scratch"
mkdir -p "$scratch/etc/upper" "$scratch/etc/work" "$scratch/varlib/upper" "$scratch/varlib/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/etc/upper,workdir=$scratch/etc/work" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$scratch/varlib/upper,workdir=$scratch/varlib/work" /var/lib
mkdir -p /etc/kubernetes /var/lib/kubelet
mount -t tmpfs -o mode=0755 tmpfs /etc/kubernetes
mount -t tmpfs -o mode=0700 tmpfs /var/lib/kubelet
cp -a "$seed/kubernetes/." /etc/kubernetes/
[ ! -d "$seed/kubelet" ] || cp -a "$seed/kubelet/." /var/lib/kubelet/
exec "$@"
