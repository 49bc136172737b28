/* The physical limit of rabbitmq-c on this broker: the same AMQP calls as the Swift wrapper's benchmark, with no
 * wrapper. Usage: raw_bench HOST PORT QUEUE COUNT. Prints one JSON line of rates (messages per second). */
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

static void die_on_reply(amqp_rpc_reply_t reply, const char *what) {
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "raw_bench: %s failed (reply type %d)\n", what, reply.reply_type);
        exit(1);
    }
}

/* Waits until the broker has confirmed every publish up to `last`. */
static void await_confirms(amqp_connection_state_t conn, uint64_t last) {
    uint64_t confirmed = 0;
    while (confirmed < last) {
        amqp_frame_t frame;
        if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) { fprintf(stderr, "raw_bench: wait failed\n"); exit(1); }
        if (frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            confirmed = ack->delivery_tag;
        }
        amqp_maybe_release_buffers(conn);
    }
}

static void publish(amqp_connection_state_t conn, amqp_bytes_t queue, int i) {
    char body[32];
    int len = snprintf(body, sizeof body, "%d", i);
    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
    amqp_bytes_t bytes = {(size_t)len, body};
    if (amqp_basic_publish(conn, 1, amqp_empty_bytes, queue, 0, 0, &props, bytes) != AMQP_STATUS_OK) {
        fprintf(stderr, "raw_bench: publish failed\n");
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: raw_bench HOST PORT QUEUE COUNT\n"); return 2; }
    int count = atoi(argv[4]);
    amqp_bytes_t queue = amqp_cstring_bytes(argv[3]);
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(socket, argv[1], atoi(argv[2])) != AMQP_STATUS_OK) { fprintf(stderr, "raw_bench: connect failed\n"); return 1; }
    die_on_reply(amqp_login(conn, "/", 0, 131072, 60, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(conn, 1);
    die_on_reply(amqp_get_rpc_reply(conn), "channel.open");
    amqp_queue_declare(conn, 1, queue, 0, 1, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "queue.declare");
    amqp_queue_purge(conn, 1, queue);
    die_on_reply(amqp_get_rpc_reply(conn), "queue.purge");
    amqp_confirm_select(conn, 1);
    die_on_reply(amqp_get_rpc_reply(conn), "confirm.select");

    uint64_t seq = 0;
    int single = count / 10 > 0 ? count / 10 : 1;
    double t0 = now();
    for (int i = 0; i < single; i++) { publish(conn, queue, i); await_confirms(conn, ++seq); }
    double single_rate = single / (now() - t0);

    t0 = now();
    for (int i = 0; i < count; i++) publish(conn, queue, i);
    seq += count;
    await_confirms(conn, seq);
    double pipelined_rate = count / (now() - t0);

    amqp_channel_open(conn, 2);
    die_on_reply(amqp_get_rpc_reply(conn), "channel.open");
    amqp_basic_qos(conn, 2, 0, 1, 0);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume(conn, 2, queue, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.consume");
    int total = single + count, received = 0;
    t0 = now();
    while (received < total) {
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers(conn);
        die_on_reply(amqp_consume_message(conn, &envelope, NULL, 0), "consume");
        amqp_basic_ack(conn, 2, envelope.delivery_tag, 0);
        amqp_destroy_envelope(&envelope);
        received++;
    }
    double consume_rate = total / (now() - t0);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    printf("{\"impl\": \"raw rabbitmq-c\", \"publish_confirm_each\": %.0f, \"publish_pipelined\": %.0f, \"consume_prefetch1\": %.0f}\n",
           single_rate, pipelined_rate, consume_rate);
    return 0;
}
