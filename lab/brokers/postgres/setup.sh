need_pkg postgresql  # sourced by scripts/setup.sh: PostgreSQL from Debian
