# Sourced by scripts/setup.sh: Google's Pub/Sub emulator, the pubsub-emulator component
# of google-cloud-cli, run with Java (native.py finds its jar under the Cloud SDK).
need_cmd java openjdk-17-jre-headless
pubsub_jar() {  # the places native.py looks in
    local roots=(/usr/lib/google-cloud-sdk /usr/share/google-cloud-sdk /opt/google-cloud-sdk
        /snap/google-cloud-cli/current "$HOME/google-cloud-sdk") gcloud root
    if gcloud=$(command -v gcloud); then
        roots=("$(dirname "$(dirname "$(readlink -f "$gcloud")")")" "${roots[@]}")
    fi
    for root in "${roots[@]}"; do
        compgen -G "$root/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar" >/dev/null &&
            return 0
    done
    return 1
}
if ! pubsub_jar; then
    # Google's apt repository is the emulator's only package source: where apt can get
    # the package (and it is not installed already), install it like any other; else
    # say what to do, and setup goes on without it.
    policy=$(apt-cache policy google-cloud-cli-pubsub-emulator 2>/dev/null || true)
    if grep -q 'Installed: (none)' <<<"$policy" && grep -q 'Candidate: [0-9]' <<<"$policy"; then
        need_pkg google-cloud-cli-pubsub-emulator
    else
        say "the Pub/Sub emulator is missing and apt cannot install" \
            "google-cloud-cli-pubsub-emulator: add Google's Cloud SDK apt repository" \
            "(packages.cloud.google.com) and run setup again, or run" \
            "\`gcloud components install pubsub-emulator\`; \`lab up pubsub\` needs it"
    fi
fi
