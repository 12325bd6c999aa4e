// A guest that speaks FUSE through virtio-fs (device 26): queue 0 is the high-priority queue,
// queue 1 the request queue. It checks the config (tag, queue count), then INIT, LOOKUP, OPEN,
// READ of hello.txt (reply gathered into two buffers), a refused LOOKUP of "..", RELEASE, and a
// FORGET on the high-priority queue (no reply expected), and prints what it read.
enum FsGuest {
    static let program = "#define DEVICE_ID 26\n" + ConsoleGuest.driver + #"""
    struct in_header { u32 len; u32 opcode; u64 unique; u64 nodeid; u32 uid; u32 gid; u32 pid; u16 extlen; u16 pad; };
    struct out_header { u32 len; int error; u64 unique; };

    static struct { struct in_header h; u32 major, minor, readahead, flags, flags2, unused[11]; } init_req;
    static struct { struct out_header h; u32 major, minor, readahead, flags; u8 rest[48]; } init_rep;
    static struct { struct in_header h; char name[16]; } lookup_req;
    static struct { struct out_header h; u64 nodeid, generation, entry_valid, attr_valid; u32 ens, ans;
                    u64 ino, size; u8 rest[72]; } lookup_rep;
    static struct { struct in_header h; u32 flags, open_flags; } open_req;
    static struct { struct out_header h; u64 fh; u32 open_flags, pad; } open_rep;
    static struct { u64 fh, offset; u32 size, read_flags; u64 lock_owner; u32 flags, pad; } read_args;
    static struct in_header read_hdr;
    static struct out_header read_out;
    static char read_data[64];
    static struct { struct in_header h; u64 fh; u32 flags, release_flags; u64 lock_owner; } release_req;
    static struct out_header plain_rep;
    static struct { struct in_header h; u64 nlookup; } forget_req;
    static u64 unique;

    static void header(struct in_header *h, u32 len, u32 op, u64 node) {
        h->len = len; h->opcode = op; h->unique = ++unique; h->nodeid = node;
    }

    /* One request: a readable header+args buffer and a writable reply buffer. */
    static int call(void *req, u32 req_len, void *rep, u32 rep_len, u32 *got) {
        set_desc(&txq, 0, req, req_len, F_NEXT, 1);
        set_desc(&txq, 1, rep, rep_len, F_WRITE, 0);
        return submit(&txq, 1, 0, got);
    }

    static int check(const char *what, struct out_header *o, u32 got, u32 want_len) {
        if (o->error != 0 || o->unique != unique || o->len != got || (want_len && got != want_len)) {
            puts_(what); puts_(" failed: error="); puthex((u32)o->error, 8); puts_(" len="); puthex(got, 4); puts_("\n");
            return 1;
        }
        return 0;
    }

    int main(void) {
        int rc = init_device();
        if (rc) return 10 + rc;
        const char *tag = "kata";
        for (int i = 0; i < 5; i++) if ((u8)rd(0x100 + i) != (u8)tag[i]) return 20;   /* NUL-padded */
        if (rd(0x124) != 1) return 21;                                                 /* num_request_queues */
        u32 got = 0;

        header(&init_req.h, sizeof init_req, 26, 0);
        init_req.major = 7; init_req.minor = 31; init_req.readahead = 65536;
        if (call(&init_req, sizeof init_req, &init_rep, sizeof init_rep, &got)) return 30;
        if (check("INIT", &init_rep.h, got, sizeof init_rep) || init_rep.major != 7) return 31;

        const char *name = "hello.txt";
        int n = 0;
        while (name[n]) { lookup_req.name[n] = name[n]; n++; }
        header(&lookup_req.h, sizeof(struct in_header) + n + 1, 1, 1);
        if (call(&lookup_req, lookup_req.h.len, &lookup_rep, sizeof lookup_rep, &got)) return 40;
        if (check("LOOKUP", &lookup_rep.h, got, sizeof lookup_rep) || lookup_rep.nodeid < 2) return 41;

        header(&open_req.h, sizeof open_req, 14, lookup_rep.nodeid);
        if (call(&open_req, sizeof open_req, &open_rep, sizeof open_rep, &got)) return 50;
        if (check("OPEN", &open_rep.h, got, sizeof open_rep)) return 51;

        /* READ: header and arguments in two readable buffers, reply into two writable ones. */
        header(&read_hdr, sizeof read_hdr + sizeof read_args, 15, lookup_rep.nodeid);
        read_args.fh = open_rep.fh; read_args.offset = 0; read_args.size = sizeof read_data;
        set_desc(&txq, 2, &read_hdr, sizeof read_hdr, F_NEXT, 3);
        set_desc(&txq, 3, &read_args, sizeof read_args, F_NEXT, 4);
        set_desc(&txq, 4, &read_out, sizeof read_out, F_NEXT | F_WRITE, 5);
        set_desc(&txq, 5, read_data, sizeof read_data, F_WRITE, 0);
        if (submit(&txq, 1, 2, &got)) return 60;
        if (check("READ", &read_out, got, 0) || got <= 16 || got - 16 != lookup_rep.size) return 61;
        puts_("read: ");
        for (u32 i = 0; i < got - 16; i++) putc_(read_data[i]);

        lookup_req.name[0] = '.'; lookup_req.name[1] = '.'; lookup_req.name[2] = 0;
        header(&lookup_req.h, sizeof(struct in_header) + 3, 1, 1);
        if (call(&lookup_req, lookup_req.h.len, &lookup_rep, sizeof lookup_rep, &got)) return 70;
        if (lookup_rep.h.error != -22 || got != 16) return 71;
        puts_("dotdot refused\n");

        header(&release_req.h, sizeof release_req, 18, lookup_rep.nodeid);
        release_req.fh = open_rep.fh;
        if (call(&release_req, sizeof release_req, &plain_rep, sizeof plain_rep, &got)) return 80;
        if (check("RELEASE", &plain_rep, got, 16)) return 81;

        /* FORGET on the high-priority queue: readable only, no reply. */
        header(&forget_req.h, sizeof forget_req, 2, 2);
        forget_req.nlookup = 1;
        set_desc(&rxq, 0, &forget_req, sizeof forget_req, 0, 0);
        got = 99;
        if (submit(&rxq, 0, 0, &got) || got != 0) return 90;
        puts_("fs ok\n");
        return 0;
    }
    """#
}
