// Fixed-argument wrappers over rabbitmq-c's variadic login functions, which Swift cannot call, and the
// eventfd the I/O thread waits on (its flags are macros Swift does not import), and naming the calling thread
// (pthread_setname_np is a GNU extension Glibc's Swift module leaves out).
#ifndef CRABBITMQ_SHIM_H
#define CRABBITMQ_SHIM_H

#include <amqp.h>

/// amqp_login_with_properties with SASL PLAIN (user name and password).
amqp_rpc_reply_t amqp_tasks_login_plain(amqp_connection_state_t state, const char *vhost, int channel_max,
                                        int frame_max, int heartbeat, const amqp_table_t *properties,
                                        const char *user, const char *password);

/// amqp_login_with_properties with SASL EXTERNAL (identity from the TLS client certificate).
amqp_rpc_reply_t amqp_tasks_login_external(amqp_connection_state_t state, const char *vhost, int channel_max,
                                           int frame_max, int heartbeat, const amqp_table_t *properties,
                                           const char *identity);

/// A non-blocking, close-on-exec eventfd: the I/O thread polls it beside the socket to be woken for new work.
int amqp_tasks_wake_fd(void);

/// Names the calling thread (what `top -H` shows); Linux keeps the first 15 bytes. Returns 0 or an errno value.
int amqp_tasks_name_current_thread(const char *name);

/// amqp_basic_publish with the body cut into frames of `frame_max` (the negotiated size) rather than rabbitmq-c's
/// own frame size, which a consuming connection raises above it to receive larger frames. Returns an amqp_status_enum.
int amqp_tasks_basic_publish(amqp_connection_state_t state, amqp_channel_t channel, amqp_bytes_t exchange,
                             amqp_bytes_t routing_key, amqp_boolean_t mandatory,
                             const amqp_basic_properties_t *properties, amqp_bytes_t body, int frame_max);

#endif
