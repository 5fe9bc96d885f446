#!/usr/bin/env bash
# Compiles the core module (main and tests in one kotlinc call) and runs its JUnit 4 tests,
# without Gradle or network: Debian's kotlin, junit4 and libgoogle-gson-java packages are enough
# (scripts/setup.sh installs them; the app takes the same Gson version from Maven Central). Exit status: JUnit's (non-zero when a test fails).
# Gradle runs the same tests with `./gradlew :core:test` on a machine with the Android toolchain.
set -euo pipefail
cd "$(dirname "$0")"

find_jar() {
  for candidate in "$@"; do
    if [ -f "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

if ! command -v kotlinc >/dev/null 2>&1; then
  echo "kotlinc not found: install Debian's kotlin package (bash scripts/setup.sh does)." >&2
  exit 2
fi
junit=$(find_jar /usr/share/java/junit4.jar /usr/share/java/junit4-4.13.2.jar) || {
  echo "junit4.jar not found: install Debian's junit4 package (bash scripts/setup.sh does)." >&2
  exit 2
}
hamcrest=$(find_jar /usr/share/java/hamcrest-core.jar /usr/share/java/hamcrest.jar) || {
  echo "hamcrest-core.jar not found: it comes with Debian's junit4 package." >&2
  exit 2
}

gson=$(find_jar /usr/share/java/gson.jar /usr/share/java/gson-2.10.jar) || {
  echo "gson.jar not found: install Debian's libgoogle-gson-java package (bash scripts/setup.sh does)." >&2
  exit 2
}

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
sources=$(find src/main/kotlin src/test/kotlin -name '*.kt' | sort)
kotlinc -classpath "$junit:$gson" -d "$build/classes" $sources
tests=$(cd src/test/kotlin && find . -name '*Test.kt' | sed 's|^\./||; s|\.kt$||; s|/|.|g' | sort)
kotlin_stdlib=$(find_jar /usr/share/java/kotlin-stdlib.jar)
exec java -cp "$build/classes:src/test/resources:$kotlin_stdlib:$gson:$junit:$hamcrest" \
  org.junit.runner.JUnitCore $tests
