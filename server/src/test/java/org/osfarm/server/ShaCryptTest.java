package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.testing.Programs;

/** SHA-512 crypt against the specification's test vectors and against openssl. */
class ShaCryptTest {
  @TempDir Path tmp;

  @Test
  void matchesTheSpecificationsVectors() {
    // Drepper, "Unix crypt using SHA-256 and SHA-512", test vectors with the default rounds
    assertThat(ShaCrypt.sha512("Hello world!", "saltstring"))
        .isEqualTo(
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1");
    assertThat(ShaCrypt.verify("Hello world!", ShaCrypt.sha512("Hello world!", "saltstring")))
        .isTrue();
    assertThat(ShaCrypt.verify("Hello world?", ShaCrypt.sha512("Hello world!", "saltstring")))
        .isFalse();
  }

  @Test
  void matchesOpensslForManyLengths() throws Exception {
    Programs.require("openssl");
    // lengths around the 64-byte digest size exercise every branch of the algorithm
    for (String pw :
        new String[] {
          "a",
          "osfarm",
          "p@ss w0rd!",
          "x".repeat(63),
          "y".repeat(64),
          "z".repeat(65),
          "q".repeat(130)
        }) {
      String salt = "Ab./9zQ" + pw.length();
      String ours = ShaCrypt.sha512(pw, salt);
      String theirs = Programs.run(tmp, "openssl", "passwd", "-6", "-salt", salt, pw).strip();
      assertThat(ours).as("password of %d chars", pw.length()).isEqualTo(theirs);
    }
  }

  @Test
  void refusesBadSalts() {
    assertThatThrownBy(() -> ShaCrypt.sha512("x", "")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> ShaCrypt.sha512("x", "a$b"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> ShaCrypt.sha512("x", "a".repeat(17)))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
