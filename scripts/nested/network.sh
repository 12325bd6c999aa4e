# Run inside the L1 guest: a container with a network interface on the built-in VMM (virtio-net
# on the keeper's tap). The container's network namespace holds one end of a veth pair
# (10.88.0.2/24), the L1's own namespace the other (10.88.0.1/24); the container pings the L1.
. /nested/lib.sh
mkdir -p "$ROOT"

# A network namespace held by a sleeping process (busybox ip has no "netns add").
unshare -n sleep 100000 &
holder=$!
for i in $(seq 1 50); do
    [ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.1
done
NS=/proc/$holder/ns/net
# busybox ip names the peer veth0.
case_ veth sh -c "ip link add vh type veth && ip link set veth0 netns $holder && \
    ip addr add 10.88.0.1/24 dev vh && ip link set vh up && \
    nsenter --net=$NS ip addr add 10.88.0.2/24 dev veth0 && nsenter --net=$NS ip link set veth0 up && \
    nsenter --net=$NS ip link set lo up && nsenter --net=$NS ip -o link show veth0"

bundle /b/ping sh -c "busybox ip -o -4 addr show; busybox ping -c 3 -W 5 10.88.0.1"
# The bundle joins that namespace and may open raw sockets (ping).
sed -i -e "s|{\"type\": \"network\"}|{\"type\": \"network\", \"path\": \"$NS\"}|" \
    -e 's|"noNewPrivileges": true|"noNewPrivileges": true, "capabilities": {"bounding": ["CAP_NET_RAW"], "effective": ["CAP_NET_RAW"], "permitted": ["CAP_NET_RAW"]}|' \
    /b/ping/config.json
case_ ping rt --debug run --bundle /b/ping c-ping
# What the namespace looks like while a container uses it is gone again: no tap, no ingress qdisc.
case_ after nsenter --net=$NS ip -o link show
kill $holder
case_ leftovers leftovers
