# Sourced by scripts/setup.sh: ElasticMQ (the SQS-compatible server), assembled from its
# Maven Central jars (pom.xml here) into the lab's cache dir, where native.py finds it.
need_cmd java openjdk-17-jre-headless
need_cmd mvn maven
elasticmq_version=$(sed -n 's:.*<elasticmq.version>\(.*\)</elasticmq.version>.*:\1:p' "$here/pom.xml")
after_apt+=("maven_assembly elasticmq-$elasticmq_version $here/pom.xml elasticmq-server_2.13-$elasticmq_version.jar")
