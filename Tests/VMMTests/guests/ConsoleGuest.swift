// A minimal virtio-mmio driver for the device at 0xd0000000 (the console unless DEVICE_ID says
// otherwise): initialisation as virtio 1.2 §3.1.1 describes, then queues 0 (rxq) and 1 (txq) as
// split virtqueues, polling the used rings.
enum ConsoleGuest {
    static let driver = #"""
    #ifndef DEVICE_ID
    #define DEVICE_ID 3
    #endif
    #ifndef SPINS
    #define SPINS 1000000UL
    #endif
    #ifdef MULTIPORT
    #define FEATURES_LO 2   /* VIRTIO_CONSOLE_F_MULTIPORT */
    #else
    #define FEATURES_LO 0
    #endif
    #define VIRTIO 0xd0000000UL
    #define QSZ 8
    #define F_NEXT 1
    #define F_WRITE 2
    struct desc { u64 addr; u32 len; u16 flags; u16 next; };
    struct avail { u16 flags; u16 idx; u16 ring[QSZ]; u16 used_event; };
    struct used_elem { u32 id; u32 len; };
    struct used { u16 flags; u16 idx; struct used_elem ring[QSZ]; u16 avail_event; };
    struct vq {
        struct desc desc[QSZ] __attribute__((aligned(16)));
        struct avail avail __attribute__((aligned(2)));
        struct used used __attribute__((aligned(4)));
        u16 next_avail;
    };
    static struct vq rxq, txq;
    #ifdef MULTIPORT
    static struct vq crxq, ctxq, prxq, ptxq;   /* control receive/transmit, port 1 receive/transmit */
    #endif

    static u32 rd(u32 off) { return mmio_read(VIRTIO + off); }
    static void wr(u32 off, u32 v) { mmio_write(VIRTIO + off, v); }

    static int setup_queue(u32 index, struct vq *q) {
        wr(0x030, index);
        if (rd(0x034) < QSZ || rd(0x044) != 0) return 1;
        wr(0x038, QSZ);
        wr(0x080, (u32)(u64)q->desc); wr(0x084, (u32)((u64)q->desc >> 32));
        wr(0x090, (u32)(u64)&q->avail); wr(0x094, (u32)((u64)&q->avail >> 32));
        wr(0x0a0, (u32)(u64)&q->used); wr(0x0a4, (u32)((u64)&q->used >> 32));
        wr(0x044, 1);
        return rd(0x044) == 1 ? 0 : 2;
    }

    static int init_device(void) {
        if (rd(0x000) != 0x74726976 || rd(0x004) != 2 || rd(0x008) != DEVICE_ID) return 1;
        wr(0x070, 0);
        wr(0x070, 1);
        wr(0x070, 1 | 2);
        wr(0x014, 1);
        if (!(rd(0x010) & 1)) return 2;          /* VIRTIO_F_VERSION_1 */
        wr(0x024, 0); wr(0x020, FEATURES_LO);
        wr(0x024, 1); wr(0x020, 1);
        wr(0x070, 1 | 2 | 8);
        if (!(rd(0x070) & 8)) return 3;          /* FEATURES_OK refused */
        if (setup_queue(0, &rxq) || setup_queue(1, &txq)) return 4;
    #ifdef MULTIPORT
        if (setup_queue(2, &crxq) || setup_queue(3, &ctxq) || setup_queue(4, &prxq) || setup_queue(5, &ptxq)) return 5;
    #endif
        wr(0x070, 1 | 2 | 8 | 4);                /* DRIVER_OK */
        return 0;
    }

    /* Posts the chain starting at descriptor `head`, notifies, and waits for the device. */
    static int submit(struct vq *q, u32 qindex, u16 head, u32 *len) {
        q->avail.ring[q->next_avail % QSZ] = head;
        fence();
        q->next_avail++;
        q->avail.idx = q->next_avail;
        fence();
        wr(0x050, qindex);
        for (u64 spins = 0; spins < SPINS; spins++) {
            if (*(volatile u16 *)&q->used.idx == q->next_avail) {
                fence();
                struct used_elem *e = &q->used.ring[(u16)(q->next_avail - 1) % QSZ];
                if (e->id != head) return 2;
                if (len) *len = e->len;
                return 0;
            }
        }
        return 1;
    }

    static void set_desc(struct vq *q, u16 i, const void *addr, u32 len, u16 flags, u16 next) {
        q->desc[i].addr = (u64)addr; q->desc[i].len = len; q->desc[i].flags = flags; q->desc[i].next = next;
    }
    """#

    /// Sends "ping", receives what the host queued, sends it back after "got:" in a two-descriptor
    /// chain, and reports on the serial port.
    static let roundTrip = driver + #"""
    static const char ping[] = "ping";
    static const char got[] = "got:";
    static char inbuf[64];

    int main(void) {
        int rc = init_device();
        if (rc) return 10 + rc;
        set_desc(&txq, 0, ping, 4, 0, 0);
        if (submit(&txq, 1, 0, 0)) return 20;
        set_desc(&rxq, 0, inbuf, sizeof inbuf, F_WRITE, 0);
        u32 n = 0;
        if (submit(&rxq, 0, 0, &n)) return 30;
        if (n == 0 || n > sizeof inbuf) return 31;
        set_desc(&txq, 1, got, 4, F_NEXT, 2);
        set_desc(&txq, 2, inbuf, n, 0, 0);
        if (submit(&txq, 1, 1, 0)) return 40;
        puts_("console ok\n");
        return 0;
    }
    """#

    /// `roundTrip`, but waiting up to seconds for each buffer: the host answers from another
    /// thread while the vCPU runs (I/O thread tests, the built-in backend's agent channel).
    static let patientRoundTrip = "#define SPINS 4000000000UL\n" + roundTrip

    /// Posts hostile chains (a loop, a buffer outside memory, a writable buffer on the transmit
    /// queue, an out-of-range next); each must come back with length 0, after which a normal
    /// chain must still work.
    static let hostile = driver + #"""
    static const char ok[] = "still alive";

    int main(void) {
        int rc = init_device();
        if (rc) return 10 + rc;
        u32 n = 99;
        set_desc(&txq, 3, ok, 4, F_NEXT, 4);
        set_desc(&txq, 4, ok, 4, F_NEXT, 3);                 /* 3 -> 4 -> 3 ... */
        if (submit(&txq, 1, 3, &n) || n != 0) return 20;
        set_desc(&txq, 5, (void *)0x40000000UL, 16, 0, 0);   /* beyond the 4 MiB of RAM */
        if (submit(&txq, 1, 5, &n) || n != 0) return 21;
        set_desc(&txq, 6, ok, 4, F_WRITE, 0);                /* device-writable on transmitq */
        if (submit(&txq, 1, 6, &n) || n != 0) return 22;
        set_desc(&txq, 7, ok, 4, F_NEXT, 200);               /* next beyond the queue */
        if (submit(&txq, 1, 7, &n) || n != 0) return 23;
        set_desc(&txq, 0, ok, sizeof ok - 1, 0, 0);
        if (submit(&txq, 1, 0, &n)) return 24;
        puts_("hostile ok\n");
        return 0;
    }
    """#
}
