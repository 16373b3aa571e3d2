#!/bin/sh
# Test only: runs a node's kubelet the way kubeadm's systemd drop-in does (bootstrap-kubeconfig,
# kubeconfig, config.yaml, kubeadm-flags.env, /etc/default/kubelet), restarting it 2 s after it
# exits (before `kubeadm init`/`join` has written its files it exits at once), until killed.
# Differences, all for this machine: the private dockerd's socket; no `--network-plugin=cni`
# (no CNI here: the static pods use the host network and the default no-op plugin keeps the
# node Ready); `--enforce-node-allocatable=` (cgroupsPerQOS is off).
# Started by multi-node-systemctl.sh, which records this script's pid and the kubelet's.
while :; do
  KUBELET_KUBEADM_ARGS=
  KUBELET_EXTRA_ARGS=
  [ -f /var/lib/kubelet/kubeadm-flags.env ] && . /var/lib/kubelet/kubeadm-flags.env
  [ -f /etc/default/kubelet ] && . /etc/default/kubelet
  flags=
  for f in $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS; do
    [ "$f" = --network-plugin=cni ] || flags="$flags $f"
  done
  echo "=== kubelet start $(date -u +%FT%TZ):$flags"
  # shellcheck disable=SC2086 # the flags are words, as in the systemd unit
  /usr/local/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
    --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
    --docker-endpoint=unix:///run/docker.sock --enforce-node-allocatable= $flags &
  echo $! >/run/kubelet.pid
  wait $! || true
  sleep 2
done
