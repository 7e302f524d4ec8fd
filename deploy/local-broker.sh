#!/usr/bin/env bash
# Brings up a local RabbitMQ for SameDay on a fresh Debian machine (as root), or checks that one is up.
# Safe to run twice: installs only what is missing, starts the broker only if it does not answer.
#   deploy/local-broker.sh            install if needed, start, wait, enable plugins
#   deploy/local-broker.sh --stop     stop the local broker
set -euo pipefail

if ! dpkg -s rabbitmq-server >/dev/null 2>&1; then
  echo "local-broker: installing rabbitmq-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # policy-rc.d may forbid starting services at install time; we start the broker ourselves below.
  apt-get install -y -q rabbitmq-server
fi

if [ "${1:-}" = "--stop" ]; then
  rabbitmqctl stop >/dev/null 2>&1 || true
  exit 0
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "local-broker: starting rabbitmq-server"
  # No systemd here: start detached. The plugin can be enabled offline before start.
  rabbitmq-plugins --offline enable rabbitmq_consistent_hash_exchange >/dev/null
  rabbitmq-server -detached
fi
rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1 || timeout 120 rabbitmqctl -q wait --timeout 120 /var/lib/rabbitmq/mnesia/rabbit@$(hostname -s).pid
rabbitmq-plugins -q enable rabbitmq_consistent_hash_exchange >/dev/null
# SameDay's limits (deploy/rabbitmq/rabbitmq.conf and definitions.json carry the same for a production node): no
# message over 128 KiB (an event is under 1 KiB; the worker refuses a body over 64 KiB itself), and the dead-letter
# and unroutable queues bounded, refusing more to their publishers rather than dropping what they hold. Applied to
# the running node, so a broker started before this script learns them too.
rabbitmqctl -q eval 'application:set_env(rabbit, max_message_size, 131072).' >/dev/null
rabbitmqctl -q set_policy --apply-to queues --priority 10 sameday-bounded-side-queues \
  '(^|\.)sameday\.(dead|unroutable)$' '{"max-length":1000000,"overflow":"reject-publish"}' >/dev/null
echo "local-broker: RabbitMQ $(rabbitmqctl -q version 2>/dev/null || echo '?') is up on 127.0.0.1:5672"
