import XCTest
@testable import OCI

final class JSONWriterTests: XCTestCase {
    func roundTrip(_ v: JSON, file: StaticString = #filePath, line: UInt = #line) {
        for pretty in [false, true] {
            let text = JSONWriter.write(v, pretty: pretty)
            do {
                let back = try JSONParser.parse(text)
                XCTAssertEqual(back, v, "pretty=\(pretty): \(text)", file: file, line: line)
            } catch {
                XCTFail("pretty=\(pretty): \(text) does not parse: \(error)", file: file, line: line)
            }
        }
    }

    func testScalarsRoundTrip() {
        roundTrip(.null)
        roundTrip(.bool(true))
        roundTrip(.bool(false))
        roundTrip(.string(""))
        roundTrip(JSON(0))
        roundTrip(JSON(-1))
        roundTrip(.number("1.5e10"))
        roundTrip(.number("-0.25"))
    }

    func testSixtyFourBitIntegersSurvive() throws {
        roundTrip(JSON(Int64.max))
        roundTrip(JSON(Int64.min))
        roundTrip(JSON(UInt64.max))
        let v = try JSONParser.parse(#"{"big": 18446744073709551615, "neg": -9223372036854775808, "n": 9007199254740993}"#)
        XCTAssertEqual(v["big"]?.uint64, UInt64.max)
        XCTAssertEqual(v["neg"]?.int64, Int64.min)
        XCTAssertEqual(v["n"]?.int64, 9_007_199_254_740_993)  // not representable as a Double
        XCTAssertEqual(JSONWriter.write(v), #"{"big":18446744073709551615,"neg":-9223372036854775808,"n":9007199254740993}"#)
    }

    func testEscapesRoundTrip() {
        let nasty = "quote\" backslash\\ slash/ nl\n cr\r tab\t bell\u{07} nul\u{00} esc\u{1b} del\u{7f} <b>&amp;"
        roundTrip(.string(nasty))
        roundTrip(.object([(nasty, .string(nasty))]))
        let out = JSONWriter.write(.string("a\"b\\c\nd\u{01}<>&"))
        XCTAssertEqual(out, #""a\"b\\c\nd\u0001\u003c\u003e\u0026""#)
        // Control characters never appear raw in the output.
        XCTAssertFalse(JSONWriter.write(.string(nasty)).unicodeScalars.contains { $0.value < 0x20 })
    }

    func testUnicodeRoundTrip() throws {
        let s = "héllo wörld 世界 🎉 \u{10FFFF} \u{2028}"
        roundTrip(.string(s))
        roundTrip(.array([.string("😀"), .string("ñ")]))
        // \u escapes from other writers (surrogate pairs included) decode to the same string.
        XCTAssertEqual(try JSONParser.parse(#""\u00e9\ud83c\udf89""#), .string("é🎉"))
    }

    func testNestedObjectsRoundTripAndKeepKeyOrder() throws {
        let v = JSON.object([
            ("z", JSON(1)),
            ("a", .array([.object([("inner", .array([.array([]), .object([]), .null]))]), JSON(true)])),
            ("m", .object([("deep", .object([("deeper", .object([("deepest", .string("x"))]))]))])),
            ("empty", .object([])),
        ])
        roundTrip(v)
        XCTAssertEqual(JSONWriter.write(v),
                       #"{"z":1,"a":[{"inner":[[],{},null]},true],"m":{"deep":{"deeper":{"deepest":"x"}}},"empty":{}}"#)
        XCTAssertEqual(try JSONParser.parse(JSONWriter.write(v)).objectPairs?.map(\.0), ["z", "a", "m", "empty"])
    }

    func testParsedDocumentRoundTrips() throws {
        let v = try JSONParser.parse(runcSpec)
        XCTAssertEqual(try JSONParser.parse(JSONWriter.write(v)), v)
        XCTAssertEqual(try JSONParser.parse(JSONWriter.write(v, pretty: true)), v)
    }

    func testPrettyOutputUsesTwoSpaceIndent() {
        let v = JSON.object([
            ("a", JSON(1)),
            ("b", .array([JSON(1), .string("x")])),
            ("c", .object([("d", .bool(false))])),
            ("e", .array([])),
            ("f", .object([])),
        ])
        let expected = """
        {
          "a": 1,
          "b": [
            1,
            "x"
          ],
          "c": {
            "d": false
          },
          "e": [],
          "f": {}
        }
        """
        XCTAssertEqual(JSONWriter.write(v, pretty: true), expected)
    }

    func testPrettyOutputOfRuncSpecMatchesItsSource() throws {
        // runcSpec is written in runc's own layout, so re-printing must reproduce it byte for byte.
        let v = try JSONParser.parse(runcSpec)
        XCTAssertEqual(JSONWriter.write(v, pretty: true), runcSpec)
    }
}
