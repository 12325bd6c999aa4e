import XCTest
@testable import VMM

final class X86SetupTests: XCTestCase {
    func testGDTEntriesAndSegments() {
        XCTAssertEqual(GDT.table, [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x008f_8b00_0000_ffff])
        let cs = GDT.segment(GDT.table[1], index: 1)
        XCTAssertEqual(cs.selector, 8); XCTAssertEqual(cs.type, 0xb); XCTAssertEqual(cs.l, 1)
        XCTAssertEqual(cs.db, 0); XCTAssertEqual(cs.present, 1); XCTAssertEqual(cs.s, 1)
        XCTAssertEqual(cs.limit, 0xffff_ffff); XCTAssertEqual(cs.base, 0); XCTAssertEqual(cs.unusable, 0)
        let ds = GDT.segment(GDT.table[2], index: 2)
        XCTAssertEqual(ds.selector, 0x10); XCTAssertEqual(ds.type, 3); XCTAssertEqual(ds.db, 1); XCTAssertEqual(ds.l, 0)
        let tr = GDT.segment(GDT.table[3], index: 3)
        XCTAssertEqual(tr.type, 0xb); XCTAssertEqual(tr.s, 0)
        XCTAssertEqual(GDT.segment(0, index: 0).unusable, 1)
        XCTAssertEqual(GDT.entry(flags: 0x9b, base: 0x1234_5678, limit: 0xabcde), 0x120a_9b34_5678_bcde)
    }

    func testIdentityPageTablesCoverFourGiB() throws {
        let m = try GuestMemory(size: 1 << 20)
        XCTAssertEqual(try PageTables.writeIdentityMap(into: m), 0x9000)
        XCTAssertEqual(try m.load(0x9000, as: UInt64.self), 0xa003)
        for g in 0..<4 {
            let pd = 0xb000 + UInt64(g) * 0x1000
            XCTAssertEqual(try m.load(0xa000 + UInt64(g) * 8, as: UInt64.self), pd | 3)
            XCTAssertEqual(try m.load(pd, as: UInt64.self), (UInt64(g) << 30) | 0x83)
            XCTAssertEqual(try m.load(pd + 511 * 8, as: UInt64.self), (UInt64(g) << 30) + (511 << 21) | 0x83)
        }
        XCTAssertEqual(try m.load(0xa020, as: UInt64.self), 0)   // nothing above 4 GiB
        XCTAssertLessThanOrEqual(0xb000 + 4 * 0x1000, X86Layout.bootStructuresEnd)
        let tiny = try GuestMemory(size: 0x4000)
        XCTAssertThrowsError(try PageTables.writeIdentityMap(into: tiny))
    }
}
