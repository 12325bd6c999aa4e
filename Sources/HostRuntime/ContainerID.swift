/// runc's rule: letters, digits, and _ + - . only; not "." or "..".
public enum ContainerID {
    public static func validate(_ id: String) throws(RuntimeError) {
        guard !id.isEmpty else { throw RuntimeError("container id cannot be empty") }
        guard id != "." && id != "..",
              id.utf8.allSatisfy({ c in
                  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
                  c == UInt8(ascii: "_") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
              }), id.utf8.count <= 1024
        else { throw RuntimeError("invalid container id \"\(id)\": only letters, digits, _ + - . are allowed") }
    }
}
