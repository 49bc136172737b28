/* The physical limit of rabbitmq-c on this broker: the AMQP calls each benchmark scenario makes, with no task
 * layer and no wrapper. Every mode prints one JSON line.
 *
 *   raw_bench publish   HOST PORT QUEUE COUNT   persistent publishes, each confirm awaited, then pipelined
 *   raw_bench consume   HOST PORT QUEUE COUNT   prefetch-1 consumer, ack each, until COUNT messages
 *   raw_bench worker    HOST PORT QUEUE         prefetch-1 consumer that replies to reply_to, then acks (forever)
 *   raw_bench roundtrip HOST PORT QUEUE COUNT   publish COUNT requests (pipelined confirms), await all replies
 *   raw_bench latency   HOST PORT QUEUE COUNT   one request at a time: confirmed publish, then its reply
 *
 * consume takes a comma-separated list of queues (one prefetch-1 consumer on each, all on one channel).
 * BENCH_BODY_BYTES=N: every request's body is [["x…x"], {}, {}] with N x's (as amqp-tasks-bench's argument), and
 * the worker echoes the request body back as its reply (as demo.echo does); without it the body is [[i], {}, {}].
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void check(amqp_rpc_reply_t reply, const char *what) {
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "raw_bench: %s failed (reply type %d)\n", what, reply.reply_type);
        exit(1);
    }
}

static amqp_connection_state_t connect_to(const char *host, int port) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(socket, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "raw_bench: cannot connect to %s:%d\n", host, port);
        exit(1);
    }
    check(amqp_login(conn, "/", 0, 131072, 60, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(conn, 1);
    check(amqp_get_rpc_reply(conn), "channel.open");
    return conn;
}

static void declare(amqp_connection_state_t conn, amqp_bytes_t queue) {
    amqp_queue_declare(conn, 1, queue, 0, 1, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "queue.declare");
}

/* Waits until the broker confirmed every publish up to `last`. */
static void await_confirms(amqp_connection_state_t conn, uint64_t last) {
    uint64_t confirmed = 0;
    while (confirmed < last) {
        amqp_frame_t frame;
        if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) { fprintf(stderr, "raw_bench: wait failed\n"); exit(1); }
        if (frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            confirmed = ((amqp_basic_ack_t *)frame.payload.method.decoded)->delivery_tag;
        }
        amqp_maybe_release_buffers(conn);
    }
}

/* BENCH_BODY_BYTES, or -1 when unset. */
static long body_bytes(void) {
    const char *value = getenv("BENCH_BODY_BYTES");
    return value ? atol(value) : -1;
}

static void publish(amqp_connection_state_t conn, amqp_bytes_t routing_key, amqp_bytes_t reply_to, int i) {
    static char *padded = NULL;
    static size_t padded_len = 0;
    char small[64], id[32], *body = small;
    long pad = body_bytes();
    size_t len;
    if (pad >= 0) {
        if (!padded) {
            padded = malloc(pad + 16);
            memcpy(padded, "[[\"", 3);
            memset(padded + 3, 'x', pad);
            memcpy(padded + 3 + pad, "\"], {}, {}]", 11);
            padded_len = 3 + pad + 11;
        }
        body = padded;
        len = padded_len;
    } else {
        len = (size_t)snprintf(small, sizeof small, "[[%d], {}, {}]", i);
    }
    snprintf(id, sizeof id, "%d", i);
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    props.delivery_mode = 2;
    props.content_type = amqp_cstring_bytes("application/json");
    props.correlation_id = amqp_cstring_bytes(id);
    if (reply_to.len) { props._flags |= AMQP_BASIC_REPLY_TO_FLAG; props.reply_to = reply_to; }
    amqp_bytes_t bytes = {len, body};
    if (amqp_basic_publish(conn, 1, amqp_empty_bytes, routing_key, 0, 0, &props, bytes) != AMQP_STATUS_OK) {
        fprintf(stderr, "raw_bench: publish failed\n");
        exit(1);
    }
}

static void consume_from(amqp_connection_state_t conn, amqp_bytes_t queue, int prefetch, int no_ack) {
    amqp_basic_qos(conn, 1, 0, prefetch, 0);
    check(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume(conn, 1, queue, amqp_empty_bytes, 0, no_ack, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "basic.consume");
}

/* Replies are persistent, into a durable reply queue, as amqp-worker sends results by default (the outcome survives a
 * broker restart); RAW_BENCH_TRANSIENT=1 sends them transient into an exclusive queue (amqp-worker --transient-results). */
static int transient_replies(void) { return getenv("RAW_BENCH_TRANSIENT") != NULL; }

static amqp_bytes_t reply_queue(amqp_connection_state_t conn) {
    int transient = transient_replies();
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, 1, amqp_empty_bytes, 0, transient ? 0 : 1, transient ? 1 : 0, 1, amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "reply queue.declare");
    return amqp_bytes_malloc_dup(ok->queue);
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: raw_bench publish|consume|worker|roundtrip|latency HOST PORT QUEUE [COUNT]\n"); return 2; }
    const char *mode = argv[1];
    int port = atoi(argv[3]);
    amqp_bytes_t queue = amqp_cstring_bytes(argv[4]);
    int count = argc > 5 ? atoi(argv[5]) : 0;
    amqp_connection_state_t conn = connect_to(argv[2], port);
    int consuming = strcmp(mode, "consume") == 0;
    if (!consuming) declare(conn, queue);

    if (strcmp(mode, "publish") == 0) {
        amqp_confirm_select(conn, 1);
        check(amqp_get_rpc_reply(conn), "confirm.select");
        uint64_t seq = 0;
        double t0 = now();
        for (int i = 0; i < count; i++) { publish(conn, queue, amqp_empty_bytes, i); await_confirms(conn, ++seq); }
        double each = count / (now() - t0);
        t0 = now();
        for (int i = 0; i < count; i++) publish(conn, queue, amqp_empty_bytes, i);
        seq += count;
        await_confirms(conn, seq);
        double pipelined = count / (now() - t0);
        amqp_queue_purge(conn, 1, queue);
        printf("{\"publish_confirm_each\": %.1f, \"publish_pipelined\": %.1f}\n", each, pipelined);
    } else if (consuming) {
        amqp_basic_qos(conn, 1, 0, 1, 0);
        check(amqp_get_rpc_reply(conn), "basic.qos");
        for (char *name = strtok(argv[4], ","); name; name = strtok(NULL, ",")) {
            amqp_bytes_t each = amqp_cstring_bytes(name);
            declare(conn, each);
            amqp_basic_consume(conn, 1, each, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
            check(amqp_get_rpc_reply(conn), "basic.consume");
        }
        double t0 = 0;
        for (int received = 0; received < count; received++) {
            amqp_envelope_t envelope;
            amqp_maybe_release_buffers(conn);
            check(amqp_consume_message(conn, &envelope, NULL, 0), "consume");
            if (received == 0) t0 = now();
            amqp_basic_ack(conn, 1, envelope.delivery_tag, 0);
            amqp_destroy_envelope(&envelope);
        }
        printf("{\"consumed\": %d, \"seconds\": %.4f}\n", count, now() - t0);
    } else if (strcmp(mode, "worker") == 0) {
        amqp_confirm_select(conn, 1);
        check(amqp_get_rpc_reply(conn), "confirm.select");
        consume_from(conn, queue, 1, 0);
        uint64_t seq = 0;
        for (;;) {
            amqp_envelope_t envelope;
            amqp_maybe_release_buffers(conn);
            check(amqp_consume_message(conn, &envelope, NULL, 0), "consume");
            amqp_basic_properties_t props;
            memset(&props, 0, sizeof props);
            props._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
            props.delivery_mode = transient_replies() ? 1 : 2;
            props.correlation_id = envelope.message.properties.correlation_id;
            props.content_type = amqp_cstring_bytes("application/json");
            amqp_bytes_t reply = body_bytes() >= 0 ? envelope.message.body
                                                   : amqp_cstring_bytes("{\"status\": \"SUCCESS\", \"result\": null}");
            amqp_basic_publish(conn, 1, amqp_empty_bytes, envelope.message.properties.reply_to, 0, 0, &props, reply);
            await_confirms(conn, ++seq); /* the outcome is recorded before the ack, as our worker does */
            amqp_basic_ack(conn, 1, envelope.delivery_tag, 0);
            amqp_destroy_envelope(&envelope);
        }
    } else if (strcmp(mode, "roundtrip") == 0 || strcmp(mode, "latency") == 0) {
        amqp_bytes_t replies = reply_queue(conn);
        amqp_confirm_select(conn, 1);
        check(amqp_get_rpc_reply(conn), "confirm.select");
        /* Persistent replies are acked one by one, as TaskClient does, so a reply lost with the connection comes again;
         * transient ones are consumed with no_ack, as Celery's rpc backend does. */
        int manual_ack = !transient_replies();
        amqp_basic_consume(conn, 1, replies, amqp_empty_bytes, 0, !manual_ack, 1, amqp_empty_table);
        check(amqp_get_rpc_reply(conn), "basic.consume");
        int sequential = strcmp(mode, "latency") == 0;
        double *latency = calloc(count, sizeof(double));
        uint64_t seq = 0;
        int received = 0;
        double t0 = now();
        if (!sequential) {
            for (int i = 0; i < count; i++) publish(conn, queue, replies, i);
        }
        for (int i = 0; i < count; i++) {
            double start = now();
            if (sequential) publish(conn, queue, replies, i);
            /* Replies and confirms arrive interleaved; read frames until this reply (or any, when pipelined). */
            for (;;) {
                amqp_frame_t frame;
                amqp_maybe_release_buffers(conn);
                if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) { fprintf(stderr, "raw_bench: wait failed\n"); return 1; }
                if (frame.frame_type != AMQP_FRAME_METHOD) continue;
                if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                    seq = ((amqp_basic_ack_t *)frame.payload.method.decoded)->delivery_tag;
                    continue;
                }
                if (frame.payload.method.id == AMQP_BASIC_DELIVER_METHOD) {
                    uint64_t tag = ((amqp_basic_deliver_t *)frame.payload.method.decoded)->delivery_tag;
                    amqp_message_t message;
                    check(amqp_read_message(conn, 1, &message, 0), "read reply");
                    amqp_destroy_message(&message);
                    if (manual_ack) amqp_basic_ack(conn, 1, tag, 0);
                    received++;
                    break;
                }
            }
            latency[i] = (now() - start) * 1000;
        }
        double seconds = now() - t0;
        if (sequential) {
            qsort(latency, count, sizeof(double), compare);
            printf("{\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f}\n", latency[count / 2],
                   latency[count * 9 / 10], latency[count * 99 / 100]);
        } else {
            printf("{\"roundtrip_per_s\": %.1f, \"received\": %d}\n", received / seconds, received);
        }
        (void)seq;
    } else {
        fprintf(stderr, "raw_bench: unknown mode %s\n", mode);
        return 2;
    }
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return 0;
}
