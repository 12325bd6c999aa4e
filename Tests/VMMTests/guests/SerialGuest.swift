// A guest speaking virtio-console's multiport protocol (what Linux's virtio_console driver does
// for a virtio-serial device): DEVICE_READY, DEVICE_ADD, PORT_READY, PORT_NAME, PORT_OPEN, then
// data on port 1. Built on ConsoleGuest.driver with MULTIPORT defined.
enum SerialGuest {
    /// Checks the port's name, says "hello" while the port is still closed, checks that host
    /// bytes are held until it opens the port, opens it, and echoes what arrives after "got:".
    static let agentPort = "#define MULTIPORT 1\n#define SPINS 4000000000UL\n" + ConsoleGuest.driver + #"""
    static u8 cbuf[4][64];
    static u16 cseen;
    static u32 cid, cev, cval, clen;
    static char inbuf[64];

    static void post(struct vq *q, u32 qindex, u16 head) {
        q->avail.ring[q->next_avail % QSZ] = head;
        fence();
        q->next_avail++;
        q->avail.idx = q->next_avail;
        fence();
        wr(0x050, qindex);
    }

    /* Waits for the next control message; its payload stays in cbuf[cid's buffer]. */
    static volatile u8 *cpayload;
    static int recv_ctl(void) {
        for (u64 s = 0; s < SPINS; s++) {
            if (*(volatile u16 *)&crxq.used.idx != cseen) {
                fence();
                struct used_elem *e = &crxq.used.ring[cseen % QSZ];
                cseen++;
                volatile u8 *b = cbuf[e->id];
                cid = b[0] | b[1] << 8 | b[2] << 16 | (u32)b[3] << 24;
                cev = b[4] | b[5] << 8;
                cval = b[6] | b[7] << 8;
                clen = e->len;
                cpayload = b + 8;
                return 0;
            }
        }
        return 1;
    }

    static u8 msgs[4][8];
    static int send_ctl(u32 id, u16 ev, u16 val, u16 slot) {
        volatile u8 *m = msgs[slot];
        m[0] = id; m[1] = id >> 8; m[2] = id >> 16; m[3] = id >> 24;
        m[4] = ev; m[5] = ev >> 8; m[6] = val; m[7] = val >> 8;
        set_desc(&ctxq, slot, msgs[slot], 8, 0, 0);
        return submit(&ctxq, 3, slot, 0);
    }

    static const char hello[] = "hello";
    static const char got[] = "got:";

    int main(void) {
        int rc = init_device();
        if (rc) return 10 + rc;
        for (u16 i = 0; i < 4; i++) { set_desc(&crxq, i, cbuf[i], 64, F_WRITE, 0); post(&crxq, 2, i); }
        if (send_ctl(0xffffffff, 0, 1, 0)) return 20;                        /* DEVICE_READY */
        if (recv_ctl() || cev != 1 || cid != 1) return 21;                   /* DEVICE_ADD 1 */
        if (send_ctl(1, 3, 1, 1)) return 22;                                 /* PORT_READY */
        if (recv_ctl() || cev != 7 || cid != 1) return 23;                   /* PORT_NAME */
        puts_("name=");
        for (u32 i = 8; i < clen && i < 64; i++) putc_(cpayload[i - 8]);
        puts_("\n");
        if (recv_ctl() || cev != 6 || cid != 1 || cval != 1) return 24;      /* PORT_OPEN: host connected */

        set_desc(&prxq, 0, inbuf, sizeof inbuf, F_WRITE, 0);
        post(&prxq, 4, 0);
        set_desc(&ptxq, 0, hello, sizeof hello - 1, 0, 0);
        if (submit(&ptxq, 5, 0, 0)) return 30;
        for (u32 s = 0; s < 100000; s++)                                      /* closed: nothing may arrive (~0.1 s here) */
            if (*(volatile u16 *)&prxq.used.idx != 0) return 31;
        if (send_ctl(1, 6, 1, 2)) return 32;                                 /* PORT_OPEN: guest opened it */
        u64 s = 0;
        while (*(volatile u16 *)&prxq.used.idx == 0) if (++s == SPINS) return 33;
        fence();
        u32 n = prxq.used.ring[0].len;
        if (n == 0 || n > sizeof inbuf) return 34;
        set_desc(&ptxq, 1, got, 4, F_NEXT, 2);
        set_desc(&ptxq, 2, inbuf, n, 0, 0);
        if (submit(&ptxq, 5, 1, 0)) return 35;
        puts_("serial ok\n");
        return 0;
    }
    """#
}
