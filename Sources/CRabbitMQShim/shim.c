#define _GNU_SOURCE
#include "CRabbitMQShim.h"

#include <pthread.h>
#include <string.h>

#include <sys/eventfd.h>

int amqp_tasks_wake_fd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int amqp_tasks_name_current_thread(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = '\0';
    return pthread_setname_np(pthread_self(), truncated);
}

amqp_rpc_reply_t amqp_tasks_login_plain(amqp_connection_state_t state, const char *vhost, int channel_max,
                                        int frame_max, int heartbeat, const amqp_table_t *properties,
                                        const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

amqp_rpc_reply_t amqp_tasks_login_external(amqp_connection_state_t state, const char *vhost, int channel_max,
                                           int frame_max, int heartbeat, const amqp_table_t *properties,
                                           const char *identity) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_EXTERNAL, identity);
}

int amqp_tasks_basic_publish(amqp_connection_state_t state, amqp_channel_t channel, amqp_bytes_t exchange,
                             amqp_bytes_t routing_key, amqp_boolean_t mandatory,
                             const amqp_basic_properties_t *properties, amqp_bytes_t body, int frame_max) {
    amqp_basic_publish_t method;
    method.ticket = 0;
    method.exchange = exchange;
    method.routing_key = routing_key;
    method.mandatory = mandatory;
    method.immediate = 0;
    int status = amqp_send_method(state, channel, AMQP_BASIC_PUBLISH_METHOD, &method);
    if (status < 0) return status;

    amqp_frame_t frame;
    frame.frame_type = AMQP_FRAME_HEADER;
    frame.channel = channel;
    frame.payload.properties.class_id = AMQP_BASIC_CLASS;
    frame.payload.properties.body_size = body.len;
    frame.payload.properties.decoded = (void *)properties;
    status = amqp_send_frame(state, &frame);
    if (status < 0) return status;

    size_t usable = (size_t)frame_max - 8; /* a frame's header (7 bytes) and end (1) */
    size_t offset = 0;
    while (offset < body.len) {
        size_t remaining = body.len - offset;
        frame.frame_type = AMQP_FRAME_BODY;
        frame.channel = channel;
        frame.payload.body_fragment.bytes = (char *)body.bytes + offset;
        frame.payload.body_fragment.len = remaining < usable ? remaining : usable;
        offset += frame.payload.body_fragment.len;
        status = amqp_send_frame(state, &frame);
        if (status < 0) return status;
    }
    return AMQP_STATUS_OK;
}
