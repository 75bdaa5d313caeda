need_pkg rabbitmq-server  # sourced by scripts/setup.sh: RabbitMQ and Erlang from Debian
