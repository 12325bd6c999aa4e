#include "ckvm_net.h"
#include <linux/if_tun.h>
#include <sys/ioctl.h>

int ckvm_tap_set_vnet_header_size(int fd, int size) { return ioctl(fd, TUNSETVNETHDRSZ, &size); }
