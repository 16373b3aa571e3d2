#!/bin/sh
# Test only. Run as: unshare -m -n -- sh live-node-namespace.sh ROOT
# Holds the live test cluster's private mount and network namespaces (the test enters them
# with `nsenter -t PID -m -n`), then sleeps until killed by its pid.
# - /etc, /usr and /var get throwaway overlays (upper dirs under ROOT): nothing the node writes
#   (kubeadm, kubelet, etcd's /var/lib/etcd, pod logs, hostPath DirectoryOrCreate) reaches the host;
# - ROOT/etc-kubernetes is /etc/kubernetes and ROOT/var-lib-kubelet is /var/lib/kubelet, so the
#   test reads and checks them from outside;
# - /run is a fresh tmpfs: the host's docker.sock is not visible, the private dockerd's is
#   /run/docker.sock (where kubeadm's docker calls and the kubelet's dockershim look);
# - the network is lo plus a veth pair with 192.0.2.10 (TEST-NET-1) and a default route through
#   it, so kubeadm's advertise-address detection finds an address and nothing leaves the namespace.
set -eu
root=$1
for d in etc usr var; do
  mkdir -p "$root/overlay/$d/upper" "$root/overlay/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$root/overlay/$d/upper,workdir=$root/overlay/$d/work" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /etc/kubernetes /var/lib/kubelet "$root/etc-kubernetes" "$root/var-lib-kubelet"
mount --bind "$root/etc-kubernetes" /etc/kubernetes
mount --bind "$root/var-lib-kubelet" /var/lib/kubelet

ip link set lo up
ip link add kf-node type veth peer name kf-peer
ip addr add 192.0.2.10/24 dev kf-node
ip link set kf-node up
ip link set kf-peer up
ip route add default via 192.0.2.1 dev kf-node

echo ready >"$root/namespace-ready"
exec sleep infinity
