#!/usr/bin/env bash
# The local Apache Kafka broker: single node, KRaft, loopback only.
#
#   deploy/kafka/kafka.sh up      fetch the jars once (Maven Central), format and start, wait until it answers
#   deploy/kafka/kafka.sh down    stop it
#   deploy/kafka/kafka.sh status  say whether it runs
#
# KAFKA_PORT (default 9092) is the client port, KAFKA_CONTROLLER_PORT (default KAFKA_PORT+1) the controller's.
# Jars live in var/kafka/libs, each broker's data and log in var/kafka/run-$KAFKA_PORT (both ignored by git).
#
# A second, secured listener (TLS and SCRAM-SHA-512), as production clusters have: KAFKA_SECURE_PORT its port,
# KAFKA_TLS_KEYSTORE a PEM file with the broker's PKCS#8 private key and certificate chain, KAFKA_SCRAM_USERS
# "name=password[,name=password]" (KRaft keeps SCRAM users from the moment the storage is formatted).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
libs="$root/var/kafka/libs"
run="${KAFKA_RUN_DIR:-$root/var/kafka/run-$port}"
pidfile="$run/broker.pid"
wait_s=${KAFKA_START_TIMEOUT_S:-90}
secure_port=${KAFKA_SECURE_PORT:-}

fetch_jars() {
  # Fetched once; again only when the pom changes (a new Kafka version).
  if [ -f "$libs/.complete" ] && [ "$libs/.complete" -nt "$here/pom.xml" ]; then return; fi
  echo "kafka: fetching broker jars from Maven Central into var/kafka/libs (once)" >&2
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answering() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && grep -q "Kafka Server started" "$run/server.log" 2>/dev/null
}

write_config() {
  mkdir -p "$run"
  local listeners="PLAINTEXT://127.0.0.1:$port" protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [ -n "$secure_port" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$secure_port"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=$listeners,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
inter.broker.listener.name=PLAINTEXT
log.dirs=$run/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
PROPS
  if [ -n "$secure_port" ]; then
    cat >> "$run/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=${KAFKA_TLS_KEYSTORE:?KAFKA_TLS_KEYSTORE names the broker key and certificates}
PROPS
  fi
  cat > "$run/log4j2.yaml" <<LOG
Configuration:
  Appenders:
    File:
      name: file
      fileName: "$run/server.log"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
LOG
}

up() {
  if running; then
    echo "kafka: already running on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2
    return
  fi
  fetch_jars
  write_config
  if [ ! -f "$run/data/meta.properties" ]; then
    local cluster
    cluster=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null)
    local scram=()
    if [ -n "${KAFKA_SCRAM_USERS:-}" ]; then
      local user
      IFS=',' read -ra users <<< "$KAFKA_SCRAM_USERS"
      for user in "${users[@]}"; do
        scram+=(--add-scram "SCRAM-SHA-512=[name=${user%%=*},password=${user#*=}]")
      done
    fi
    java -cp "$libs/*" -Dlog4j2.configurationFile="$run/log4j2.yaml" kafka.tools.StorageTool format \
        --standalone -t "$cluster" -c "$run/server.properties" "${scram[@]}" >/dev/null
  fi
  : > "$run/server.log"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$run/log4j2.yaml" -cp "$libs/*" \
      kafka.Kafka "$run/server.properties" > "$run/stdout.log" 2>&1 &
  echo $! > "$pidfile"
  local waited=0
  until answering; do
    if ! running; then
      echo "kafka: the broker exited; see $run/stdout.log and $run/server.log" >&2
      tail -20 "$run/stdout.log" >&2 || true
      exit 1
    fi
    if [ "$waited" -ge "$((wait_s * 10))" ]; then
      echo "kafka: no answer on 127.0.0.1:$port after ${wait_s}s; see $run/server.log" >&2
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "kafka: ready on 127.0.0.1:$port" >&2
}

down() {
  if ! running; then
    echo "kafka: not running on 127.0.0.1:$port" >&2
    rm -f "$pidfile"
    return
  fi
  local pid
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$pidfile"
  echo "kafka: stopped" >&2
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running; then echo "running on 127.0.0.1:$port"; else echo "stopped"; exit 1; fi ;;
  fetch) fetch_jars ;;
  *) echo "usage: $0 up|down|status|fetch" >&2; exit 2 ;;
esac
