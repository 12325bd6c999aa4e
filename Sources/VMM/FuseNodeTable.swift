#if canImport(Glibc)
import Glibc
#endif

/// The inodes the guest knows: node id -> O_PATH descriptor, with the kernel's lookup count.
/// Node ids are never reused (so a stale id from the guest cannot reach a newer file) and one
/// host inode has one node (keyed by device and inode number, stable while its descriptor is held).
/// Unknown ids fail with ENOENT; the number of nodes is capped so a guest cannot exhaust the host's
/// descriptors.
final class FuseNodeTable {
    struct Node {
        let fd: Int32
        let type: mode_t
        let key: Key
        var lookups: UInt64
    }
    struct Key: Hashable { let dev: UInt64; let ino: UInt64 }

    private(set) var nodes: [UInt64: Node] = [:]
    private var byInode: [Key: UInt64] = [:]
    private var nextID: UInt64 = Fuse.rootID + 1
    let limit: Int

    init(rootFD: Int32, rootStat: stat, limit: Int) {
        self.limit = limit
        let key = Key(dev: UInt64(rootStat.st_dev), ino: UInt64(rootStat.st_ino))
        // The root is never forgotten and its descriptor belongs to the ConfinedTree.
        nodes[Fuse.rootID] = Node(fd: rootFD, type: S_IFDIR, key: key, lookups: 1)
        byInode[key] = Fuse.rootID
    }

    deinit { for (id, n) in nodes where id != Fuse.rootID { close(n.fd) } }

    var count: Int { nodes.count }

    func node(_ id: UInt64) throws(FuseError) -> Node {
        guard let n = nodes[id] else { throw .notFound }
        return n
    }

    /// Records one lookup of the inode behind `fd` (taking ownership of `fd`) and returns its id.
    func insert(fd: Int32, stat st: stat) throws(FuseError) -> UInt64 {
        let key = Key(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
        if let id = byInode[key] {
            close(fd)
            if id != Fuse.rootID { nodes[id]!.lookups &+= 1 }
            return id
        }
        guard nodes.count < limit else { close(fd); throw FuseError(ENFILE) }
        let id = nextID
        nextID += 1
        nodes[id] = Node(fd: fd, type: st.st_mode & S_IFMT, key: key, lookups: 1)
        byInode[key] = id
        return id
    }

    /// The kernel dropped `count` lookups of `id`; the node goes when none are left.
    func forget(_ id: UInt64, count: UInt64) {
        guard id != Fuse.rootID, var n = nodes[id] else { return }
        n.lookups = n.lookups > count ? n.lookups - count : 0
        if n.lookups == 0 {
            close(n.fd)
            nodes[id] = nil
            byInode[n.key] = nil
        } else {
            nodes[id] = n
        }
    }

    /// Drops every node but the root (FUSE_DESTROY, or a device reset).
    func removeAll() {
        for (id, n) in nodes where id != Fuse.rootID {
            close(n.fd)
            nodes[id] = nil
            byInode[n.key] = nil
        }
    }
}
