import AMQP
import Foundation
import Testing

/// Broker URLs that used to trap or to leak their password: numeric options out of range, and passwords in URLs
/// that Foundation's parser refuses or misreads.
@Suite struct URLSafetyTests {
    /// Passwords that Foundation's `URLComponents` refuses or misreads; each contains `S3cr3t`.
    static let oddURLs = [
        "amqp://user:S3cr3t@host/",
        "amqp://user:S3cr3t word@host/",
        "amqp://user:S3cr3t%zz@host/",
        "amqp://user:S3cr3t%@host/",
        "amqp://user:S3cr3t/x@host/",
        "amqp://user:S3cr3t?x@host/",
        "amqp://user:S3cr3t#x@host/",
        "amqp://user:S3cr3t@x@host/",
        "amqp://user:S3cr3t:x@host/",
        "amqp://user:S3cr3t[x@host/",
        "amqp://user:S3cr3t]x@host/",
        "amqp://user:S3cr3t\"x@host/",
        "amqp://user:S3cr3t<x>@host/",
        "amqp://user:S3cr3t{x}|^`\\@host/",
        "amqp://user:S3cr3t€ü@host/",
        "amqp://user:S3cr3t\n@host/",
        "amqp://user:S3cr3t\t@host/",
        "amqp://user:S3cr3t,x@host/",
        "amqp://user:S3cr3t@host:notaport/",
        "amqp://user:S3cr3t@host:99999999999999999999/",
        "amqp://user:S3cr3t@[::1/",
        "amqp://user:S3cr3t@ho st/",
        "amqp://user:S3cr3t@/",
        "amqp://user:S3cr3t",
        "amqp://user:S3cr3t/path",
        "amqp://:S3cr3t@host",
        "AMQPS://user:S3cr3t@host",
        "amqp:/user:S3cr3t@host",
        "amqp:user:S3cr3t@host",
        "user:S3cr3t@host",
        "amqp://user:S3cr3t@h1/,amqp://user:S3cr3t@h2/",
        "amqp://user:S3cr3t@h1/, amqp://user:S3cr3t word@h2/",
        "amqp://user:S3cr3t%zz@h1,amqp://other:S3cr3t/x@h2,amqps://third:S3cr3t?@h3:5671",
        "amqp://user:S3cr3t,amqp://second:S3cr3t@h2",
    ]

    @Test(arguments: oddURLs) func maskedNeverShowsThePassword(_ url: String) {
        let masked = ConnectionConfiguration.masked(url)
        #expect(!masked.contains("S3cr3t"), "\(url.debugDescription) → \(masked.debugDescription)")
        #expect(masked.contains("***"))
    }

    @Test(arguments: oddURLs) func parseErrorsNeverShowThePassword(_ url: String) {
        do {
            _ = try ConnectionConfiguration(url: url)
        } catch let error as AMQPError {
            #expect(!"\(error)".contains("S3cr3t"), "\(error)")
        } catch {
            Issue.record("not an AMQPError: \(error)")
        }
    }

    @Test func maskingKeepsEverythingButThePassword() {
        #expect(ConnectionConfiguration.masked("amqp://u:secret@h/") == "amqp://u:***@h/")
        #expect(ConnectionConfiguration.masked("amqp://u:p@ss@h:5672/%2f?heartbeat=5") == "amqp://u:***@h:5672/%2f?heartbeat=5")
        #expect(
            ConnectionConfiguration.masked("amqp://a:x@h1/, amqps://b:y@h2:5671/v,amqp://h3")
                == "amqp://a:***@h1/, amqps://b:***@h2:5671/v,amqp://h3")
        #expect(ConnectionConfiguration.masked("amqp://user@h/") == "amqp://user@h/", "no password, nothing to mask")
        #expect(ConnectionConfiguration.masked("amqp://h:5672/%2f") == "amqp://h:5672/%2f", "a port is not a password")
        #expect(ConnectionConfiguration.masked("amqp://[::1]:5672/") == "amqp://[::1]:5672/")
        #expect(ConnectionConfiguration.masked("amqp://user:pass") == "amqp://user:***")
    }

    @Test(arguments: [
        ("heartbeat=inf", "heartbeat"), ("heartbeat=nan", "heartbeat"), ("heartbeat=1e30", "heartbeat"),
        ("heartbeat=65536", "heartbeat"), ("heartbeat=1.5", "heartbeat"), ("heartbeat=-1", "heartbeat"),
        ("channel_max=1e30", "channel_max"), ("channel_max=65536", "channel_max"), ("channel_max=inf", "channel_max"),
        ("frame_max=1e300", "frame_max"), ("frame_max=4095", "frame_max"), ("frame_max=2147483648", "frame_max"),
        ("connection_timeout=inf", "connection_timeout"), ("connection_timeout=1e300", "connection_timeout"),
        ("connection_timeout=-inf", "connection_timeout"), ("connection_timeout=0", "connection_timeout"),
    ])
    func numericOptionsOutOfRangeAreClearErrors(_ option: String, _ name: String) {
        let error = #expect(throws: AMQPError.self) {
            try ConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1/?\(option)")
        }
        #expect(error?.kind == .invalidArgument)
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(name) && text.contains(" from ") && text.contains(" to "), "names the option and its range: \(text)")
    }

    @Test func numericOptionsAtTheirLimitsAreAccepted() throws {
        let c = try ConnectionConfiguration(
            url: "amqp://h/?heartbeat=65535&channel_max=65535&frame_max=2147483647&connection_timeout=86400000")
        #expect(c.heartbeat == .seconds(65535) && c.channelMax == 65535 && c.frameMax == 2_147_483_647)
        #expect(c.connectionTimeout == .seconds(86400))
        let low = try ConnectionConfiguration(url: "amqp://h/?heartbeat=0&channel_max=0&frame_max=4096&connection_timeout=1")
        #expect(low.heartbeat == .zero && low.channelMax == 0 && low.frameMax == 4096 && low.connectionTimeout == .milliseconds(1))
    }
}
