#if canImport(Glibc)
import Glibc
#endif
import Agent
import HostRuntime
import OCI

/// `list`: runc's table (Go tabwriter: min width 12, padding 3), `--format json`, `--quiet`.
enum ListCommand {
    static func run(_ ctx: Context, format: String, quiet: Bool) throws(RuntimeError) -> String {
        let store = ctx.store
        var rows: [(ContainerState, ContainerState.Status, String)] = []
        for id in store.list() {
            guard let st = try? store.load(id) else { continue }
            rows.append((st, store.currentStatus(st), owner(of: store.directory(id))))
        }
        if quiet { return rows.map { $0.0.id }.joined(separator: "\n") }
        switch format {
        case "json":
            let items: [JSON] = rows.map { st, status, owner in
                var pairs = st.runcJSON(status: status).objectPairs!
                pairs = pairs.map { $0.0 == "owner" ? ("owner", JSON(owner)) : $0 }
                if st.annotations.isEmpty { pairs.removeAll { $0.0 == "annotations" } }
                return .object(pairs)
            }
            return JSONWriter.write(.array(items))  // runc prints null for none; [] is what clients parse
        case "table":
            var table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
            for (st, status, owner) in rows {
                table.append([st.id, String(status == .stopped ? 0 : st.pid), status.rawValue, st.bundle, st.created, owner])
            }
            return tabulate(table)
        default:
            throw RuntimeError("invalid format option \"\(format)\" (table or json)")
        }
    }

    static func tabulate(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { c in max(12, rows.map { $0[c].count + 3 }.max() ?? 0) }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }.joined()
        }.joined(separator: "\n")
    }

    static func owner(of path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "" }
        guard let pw = getpwuid(st.st_uid) else { return "#\(st.st_uid)" }
        return String(cString: pw.pointee.pw_name)
    }
}
