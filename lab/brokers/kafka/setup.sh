# Sourced by scripts/setup.sh: Apache Kafka, assembled from its Maven Central jars
# (pom.xml here) into the lab's cache dir, where native.py finds it.
need_cmd java openjdk-17-jre-headless
need_cmd mvn maven
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
after_apt+=("maven_assembly kafka-$kafka_version $here/pom.xml kafka_2.13-$kafka_version.jar")
