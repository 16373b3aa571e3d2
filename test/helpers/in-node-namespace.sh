#!/bin/sh
# Test only. Run as: unshare -m -- sh in-node-namespace.sh NODE_DIR SCRATCH_DIR COMMAND [ARGS...]
# Inside this private mount namespace, NODE_DIR is /etc/kubernetes (kubeadm always writes its
# kubeconfigs there). /etc gets a throwaway overlay first so the mount point can exist without
# creating anything in the host's /etc; the host's /etc/kubernetes is never touched.
set -eu
node_dir=$1
scratch=$2
shift 2
mkdir -p "$scratch/upper" "$scratch/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
mkdir -p /etc/kubernetes
mount --bind "$node_dir" /etc/kubernetes
exec "$@"
