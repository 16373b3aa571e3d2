#!/bin/sh
# Test only. Run inside the node's network namespace as:
#   unshare -m -u -- sh multi-node-namespace.sh NODE_DIR NODE_NAME HOSTS_FILE BIN_DIR
# Holds one node of the multi-node test cluster (test/helpers/multi-node-cluster.ts): its own
# mount and UTS namespaces (the network namespace is made and wired by the test beforehand),
# then sleeps until killed by its pid. Like live-node-namespace.sh:
# - /etc, /usr, /var and /root get throwaway overlays (upper dirs under NODE_DIR): nothing the
#   node writes (kubeadm, kubelet, etcd, whatever a tool run over ssh writes) reaches the host;
# - NODE_DIR/etc-kubernetes is /etc/kubernetes and NODE_DIR/var-lib-kubelet is /var/lib/kubelet,
#   so the test reads them from outside;
# - /run is a fresh tmpfs: the node's dockerd socket is /run/docker.sock, sshd's privilege
#   separation directory is /run/sshd.
# And: the hostname is NODE_NAME (kubeadm's node name), /etc/hosts names every node and the
# control-plane endpoint, kubeadm, kubelet and kubectl of BIN_DIR are on PATH (/usr/local/bin),
# where a tool run over ssh looks for them, and `systemctl` is multi-node-systemctl.sh (the
# kubelet as a service, without systemd).
set -eu
dir=$1
name=$2
hosts=$3
bin=$4
for d in etc usr var root; do
  mkdir -p "$dir/overlay/$d/upper" "$dir/overlay/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$dir/overlay/$d/upper,workdir=$dir/overlay/$d/work" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
# bash reads ~/.bashrc for every command run over ssh: the host's is not the node's (a host's shell
# set-up, e.g. pyenv's rehash lock shared with the host's shells, held every remote command ~60 s)
rm -f /root/.bashrc
mkdir -p /run/sshd /etc/kubernetes /var/lib/kubelet "$dir/etc-kubernetes" "$dir/var-lib-kubelet"
mount --bind "$dir/etc-kubernetes" /etc/kubernetes
mount --bind "$dir/var-lib-kubelet" /var/lib/kubelet
hostname "$name"
echo "$name" >/etc/hostname
cp "$hosts" /etc/hosts
for b in kubeadm kubelet kubectl; do ln -sf "$bin/$b" "/usr/local/bin/$b"; done
here=$(cd "$(dirname "$0")" && pwd)
install -m 0755 "$here/multi-node-systemctl.sh" /usr/local/bin/systemctl
install -m 0755 "$here/multi-node-systemctl.sh" /usr/bin/systemctl
mkdir -p /usr/local/lib /var/log
install -m 0644 "$here/multi-node-kubelet.sh" /usr/local/lib/kf-kubelet.sh

echo ready >"$dir/namespace-ready"
exec sleep infinity
