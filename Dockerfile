# syntax=docker/dockerfile:1
# Build stages (build, criu) and two images:
#   docker build --target operator   -t stasis/operator:0.1.0 .
#   docker build --target node-agent -t stasis/node-agent:0.1.0 .

FROM maven:3.9-eclipse-temurin-17 AS build
# gcc/make/binutils build the parasite blob that the node agent injects into targets.
RUN apt-get update && apt-get install -y --no-install-recommends gcc make binutils libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pom.xml ./
COPY crds/pom.xml crds/
COPY node-agent/pom.xml node-agent/
COPY operator/pom.xml operator/
# Dependencies first, so that source edits do not download the world again.
RUN mvn -B -q -ntp dependency:go-offline -DexcludeGroupIds=dev.stasis || true
COPY . .
RUN mvn -B -ntp -DskipTests -Dspotless.check.skip=true package

# Upstream CRIU, runc restore's engine on the nodes (the dump is Stasis's own and never runs it):
# Debian's, packaged with its own loader and libraries by package-criu so that it runs on any node
# distribution. 4.2.1 or newer: 4.1.1 cannot dump or restore inet sockets on Linux >= 6.16.
FROM debian:sid-slim AS criu
RUN apt-get update && apt-get install -y --no-install-recommends criu \
    && rm -rf /var/lib/apt/lists/*
COPY node-agent/src/main/runtime/package-criu /usr/local/bin/package-criu
RUN package-criu / /out/criu

# The operator: unprivileged Quarkus app (fast-jar layout), health on :8080/q/health, metrics on
# :8080/q/metrics.
FROM eclipse-temurin:17-jre AS operator
WORKDIR /app
COPY --from=build /src/operator/target/quarkus-app/ /app/
USER 185
EXPOSE 8080
ENTRYPOINT ["java", "-Djava.util.logging.manager=org.jboss.logmanager.LogManager", "-jar", "/app/quarkus-run.jar"]

# The node agent: runs privileged with hostPID (see the chart); no listening port.
FROM eclipse-temurin:17-jre AS node-agent
# iptables/ip6tables lock established TCP connections out of the network during a dump (CRIU's
# rules, which `criu restore` deletes).
RUN apt-get update && apt-get install -y --no-install-recommends iptables \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/node-agent/target/stasis-node-agent.jar /app/
COPY --from=build /src/node-agent/target/lib/ /app/lib/
# The runtime wrapper the chart's init container installs on each node (docs/restore.md).
COPY node-agent/src/main/runtime/stasis-runc /app/runtime/stasis-runc
# CRIU for runc restore; install-runtime copies it to the node and names it in runtime.env.
COPY --from=criu /out/criu /app/criu
ENTRYPOINT ["java", "-XX:+UseSerialGC", "-Xss8m", "-XX:-UsePerfData", "-jar", "/app/stasis-node-agent.jar"]
CMD ["agent"]
