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
