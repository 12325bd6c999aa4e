// C side of the built-in VMM's virtio-net: the tap ioctl Swift cannot call (a function-like
// request macro through variadic ioctl).
#ifndef CKVM_NET_H
#define CKVM_NET_H

/// TUNSETVNETHDRSZ: the size of the virtio-net header the tap prepends to every frame it reads
/// and expects before every frame written (12 for virtio 1.x's struct virtio_net_hdr_v1).
/// Returns 0 or -1/errno.
int ckvm_tap_set_vnet_header_size(int fd, int size);

#endif
