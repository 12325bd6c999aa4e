/// A 16550A-compatible UART (8250 family) at 0x3f8: enough for Linux's 8250 driver and for
/// polled output from tiny guests. Transmitted bytes are collected (up to `captureLimit`) and
/// passed to `onOutput`; `queueInput` feeds the receive side.
public final class Serial8250: BusDevice {
    enum Reg { static let data = 0, ier = 1, iir = 2, lcr = 3, mcr = 4, lsr = 5, msr = 6, scr = 7 }
    static let ierRDI: UInt8 = 0x01, ierTHRI: UInt8 = 0x02
    static let iirNone: UInt8 = 0x01, iirTHRI: UInt8 = 0x02, iirRDI: UInt8 = 0x04, iirFIFO: UInt8 = 0xc0
    static let lsrDR: UInt8 = 0x01, lsrTHRE: UInt8 = 0x20, lsrTEMT: UInt8 = 0x40
    static let lcrDLAB: UInt8 = 0x80, mcrLoop: UInt8 = 0x10

    public private(set) var output: [UInt8] = []
    public var captureLimit = 1 << 20
    public var onOutput: ((UInt8) -> Void)?
    /// Raised when the UART wants the guest's attention (IRQ 4 on a PC).
    public var onInterrupt: (() -> Void)?

    var input: [UInt8] = []
    var inputHead = 0
    var ier: UInt8 = 0, lcr: UInt8 = 0x03, mcr: UInt8 = 0x08, scr: UInt8 = 0
    var divisorLow: UInt8 = 0x0c, divisorHigh: UInt8 = 0
    var fifoEnabled = false
    var thrInterruptPending = false

    public init() {}

    public var outputString: String { String(decoding: output, as: UTF8.self) }

    public func queueInput(_ bytes: [UInt8]) {
        if inputHead > 4096 { input.removeFirst(inputHead); inputHead = 0 }
        input.append(contentsOf: bytes)
        if ier & Serial8250.ierRDI != 0, !bytes.isEmpty { onInterrupt?() }
    }

    var hasInput: Bool { inputHead < input.count }
    var dlab: Bool { lcr & Serial8250.lcrDLAB != 0 }

    public func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        guard data.count > 0 else { return }
        for i in data.indices { data[i] = 0 }
        data[0] = readRegister(Int(offset))
    }

    public func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        guard let v = data.first else { return }
        writeRegister(Int(offset), v)
    }

    func readRegister(_ r: Int) -> UInt8 {
        switch r {
        case Reg.data:
            if dlab { return divisorLow }
            guard hasInput else { return 0 }
            defer { inputHead += 1 }
            return input[inputHead]
        case Reg.ier: return dlab ? divisorHigh : ier
        case Reg.iir:
            let fifo = fifoEnabled ? Serial8250.iirFIFO : 0
            if ier & Serial8250.ierRDI != 0, hasInput { return Serial8250.iirRDI | fifo }
            if thrInterruptPending { thrInterruptPending = false; return Serial8250.iirTHRI | fifo }
            return Serial8250.iirNone | fifo
        case Reg.lcr: return lcr
        case Reg.mcr: return mcr
        case Reg.lsr: return Serial8250.lsrTHRE | Serial8250.lsrTEMT | (hasInput ? Serial8250.lsrDR : 0)
        case Reg.msr:
            if mcr & Serial8250.mcrLoop != 0 {
                // Loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
                return ((mcr & 0x02) << 3) | ((mcr & 0x01) << 5) | ((mcr & 0x04) << 4) | ((mcr & 0x08) << 4)
            }
            return 0xb0   // DCD | DSR | CTS
        case Reg.scr: return scr
        default: return 0
        }
    }

    func writeRegister(_ r: Int, _ v: UInt8) {
        switch r {
        case Reg.data:
            if dlab { divisorLow = v; return }
            if mcr & Serial8250.mcrLoop != 0 {
                queueInput([v])
            } else {
                if output.count < captureLimit { output.append(v) }
                onOutput?(v)
            }
            if ier & Serial8250.ierTHRI != 0 { thrInterruptPending = true; onInterrupt?() }
        case Reg.ier:
            if dlab { divisorHigh = v; return }
            let enablingTHRI = v & Serial8250.ierTHRI != 0 && ier & Serial8250.ierTHRI == 0
            ier = v & 0x0f
            if enablingTHRI { thrInterruptPending = true; onInterrupt?() }
            else if ier & Serial8250.ierRDI != 0, hasInput { onInterrupt?() }
        case Reg.iir: fifoEnabled = v & 0x01 != 0
        case Reg.lcr: lcr = v
        case Reg.mcr: mcr = v & 0x1f
        case Reg.scr: scr = v
        default: break
        }
    }
}
