# Sourced by scripts/setup.sh: kinesalite from the npm registry into the lab's cache dir,
# run by the machine's Node.js (native.py names the version). Its LevelDB binding ships
# prebuilt for Linux, so no install script needs to run.
need_cmd node nodejs
need_cmd npm npm
kinesalite_version=$(sed -n 's/^KINESALITE_VERSION = "\(.*\)".*/\1/p' "$here/native.py")
after_apt+=("npm_assembly kinesalite-$kinesalite_version node_modules/kinesalite/index.js kinesalite@$kinesalite_version")
# A clock a day ahead for kinesalite, in the test that watches records expire (24 h at the
# least, so no run lasts long enough).
need_pkg faketime
