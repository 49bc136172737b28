// The libFuzzer harness. Built only by Tests/Fuzz/run (AMQP_TASKS_FUZZ=1, -sanitize=fuzzer,address). SwiftPM links
// an executable's entry point under its own name, so this defines that name and hands over to libFuzzer's driver;
// each input goes to FuzzTargets.run.
import AMQPTasksFuzzing
import CFuzzDriver
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let bytes else { return 0 }
    FuzzTargets.run(Data(bytes: bytes, count: size))
    return 0
}

@_cdecl("amqp_tasks_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { fuzzOneInput($0, $1) }
}
