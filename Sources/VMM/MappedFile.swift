#if canImport(Glibc)
import Glibc
#endif

/// A read-only private mapping of a whole file (kernel images, initramfs): parsed and copied into
/// guest memory without reading it into a heap buffer first.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws(KvmError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .syscall("open \(path)", errno: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) < 0 { throw .syscall("fstat \(path)", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .invalidConfiguration("\(path) is not a regular file") }
        let size = Int(st.st_size)
        self.path = path
        if size == 0 { bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .syscall("mmap \(path)", errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// Wraps bytes already in memory (tests); they are copied into an anonymous mapping.
    public init(name: String, contents: [UInt8]) throws(KvmError) {
        path = name
        if contents.isEmpty { bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        guard let p = mmap(nil, contents.count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              p != MAP_FAILED else { throw .syscall("mmap \(contents.count) bytes", errno: errno) }
        contents.withUnsafeBytes { _ = memcpy(p, $0.baseAddress!, contents.count) }
        bytes = UnsafeRawBufferPointer(start: p, count: contents.count)
    }

    deinit {
        if let p = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: p), bytes.count) }
    }

    public var count: Int { bytes.count }

    /// Little-endian integer at `offset`, nil when it does not fit in the file.
    public func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T? {
        guard offset >= 0, offset <= count - MemoryLayout<T>.size else { return nil }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// `length` bytes at `offset`, nil when the range is not inside the file.
    public func slice(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length])
    }
}
