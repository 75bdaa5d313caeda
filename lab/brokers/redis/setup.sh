need_pkg redis-server  # sourced by scripts/setup.sh: Redis from Debian
