// The rabbitmq-c headers that the Swift wrapper uses (Debian: librabbitmq-dev 0.11).
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
