import Testing

@testable import AMQP

/// `AMQPError`'s codes, its `~=` matching and its structural classifications, without a broker.
@Suite struct ErrorTaxonomyTests {
    static func channelClosed(
        _ code: ReplyCode, by method: AMQPMethod, passive: Bool = false, text: String = "NOT_FOUND - whatever"
    ) -> AMQPError {
        AMQPError(
            .channelClosedByServer, operation: method.description, message: text, replyCode: code,
            failedMethod: method, requestWasPassive: passive)
    }

    @Test func aConsumerTimeoutIsNotExplainedAsADeclarationMismatch() {
        let text = "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 30000 ms."
        let hint = ErrorHints.forReply(.preconditionFailed, text: text)
        #expect(hint?.contains("consumer_timeout") == true)
        #expect(hint?.contains("declare") == false)
        #expect(ErrorHints.forReply(.preconditionFailed, text: "PRECONDITION_FAILED - inequivalent arg")?
            .contains("declare it exactly") == true)
    }

    @Test func catchMatchesTheReplyCode() {
        func caught(_ error: AMQPError) -> String {
            do { throw error } catch AMQPError.notFound { return "404" } catch AMQPError.preconditionFailed {
                return "406"
            } catch { return "other" }
        }
        #expect(caught(Self.channelClosed(.notFound, by: .queueDeclare)) == "404")
        #expect(caught(Self.channelClosed(.preconditionFailed, by: .queueDeclare)) == "406")
        #expect(caught(AMQPError(.closed, operation: "x", message: "closed")) == "other")
    }

    @Test func catchMatchesTheKind() {
        func caught(_ error: any Error) -> String {
            do { throw error } catch AMQPError.unroutable { return "unroutable" } catch AMQPError.closed {
                return "closed"
            } catch AMQPError.channelClosedByServer { return "channel" } catch { return "other" }
        }
        #expect(caught(AMQPError(.unroutable, operation: "basic.publish", message: "", replyCode: .noRoute)) == "unroutable")
        #expect(caught(AMQPError(.closed, operation: "x", message: "")) == "closed")
        #expect(caught(Self.channelClosed(.notFound, by: .basicConsume)) == "channel")
        #expect(caught(CancellationError()) == "other", "another error type matches no AMQP code")
    }

    @Test func kindsStillCompareAndSwitchAsTheEnumDid() {
        let error = AMQPError(.invalidArgument, operation: "connect", message: "bad URL")
        #expect(error.kind == .invalidArgument)
        let described: String
        switch error.kind {
        case .library, .timeout, .closed: described = "transient"
        case .invalidArgument: described = "caller"
        default: described = "other"
        }
        #expect(described == "caller")
        #expect(AMQPError.Kind.closed == AMQPError.Code(rawValue: "closed"), "a code is its raw value")
    }

    @Test func nodeDownIsA404OnANonPassiveQueueDeclare() {
        #expect(Self.channelClosed(.notFound, by: .queueDeclare).isNodeDown)
        #expect(Self.channelClosed(.notFound, by: .queueDeclare).isChannelLevel)
    }

    @Test func nodeDownIsNotToldByTheText() {
        let text = "NOT_FOUND - home node 'rabbit@b' of durable queue 'q' in vhost '/' is down or inaccessible"
        // A 404 on a passive declare or on basic.consume cannot tell a missing queue from an unreachable one,
        // whatever the text says.
        #expect(!Self.channelClosed(.notFound, by: .queueDeclare, passive: true, text: text).isNodeDown)
        #expect(!Self.channelClosed(.notFound, by: .basicConsume, text: text).isNodeDown)
        #expect(!Self.channelClosed(.preconditionFailed, by: .queueDeclare, text: text).isNodeDown)
        #expect(!AMQPError(.closed, operation: "queue.declare", message: text).isNodeDown)
    }

    @Test func aClosingErrorNamesTheOperationThatWaited() {
        let lost = AMQPError.libraryFailure(-9, operation: "read from the broker")
        let named = lost.forOperation("queue.declare")
        #expect(named.operation == "queue.declare")
        #expect(named.message.hasPrefix("read from the broker: "))
        #expect(named.libraryStatus == -9)
        let refused = Self.channelClosed(.notFound, by: .queueDeclare)
        #expect(refused.forOperation("other").operation == refused.operation, "a channel error keeps its own")
    }

    @Test func methodsHaveTheirSpecNames() {
        #expect(AMQPMethod.queueDeclare.description == "queue.declare")
        #expect(AMQPMethod(classID: 99, methodID: 1).description == "method 99.1")
    }
}
