/// mount(2) flag values (glibc exposes them as an enum Swift imports awkwardly).
let MS_RDONLY: UInt = 1, MS_NOSUID: UInt = 2, MS_NODEV: UInt = 4, MS_NOEXEC: UInt = 8
let MS_SYNCHRONOUS: UInt = 16, MS_REMOUNT: UInt = 32, MS_MANDLOCK: UInt = 64, MS_DIRSYNC: UInt = 128
let MS_NOATIME: UInt = 1024, MS_NODIRATIME: UInt = 2048, MS_BIND: UInt = 4096, MS_REC: UInt = 16384
let MS_UNBINDABLE: UInt = 1 << 17, MS_PRIVATE: UInt = 1 << 18, MS_SLAVE: UInt = 1 << 19, MS_SHARED: UInt = 1 << 20
let MS_RELATIME: UInt = 1 << 21, MS_STRICTATIME: UInt = 1 << 24
let MNT_DETACH: Int32 = 2
let MS_MOVE: UInt = 8192
