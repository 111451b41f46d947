package org.osfarm.core;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A named byte value: an extended attribute ({@code security.capability}, {@code
 * system.posix_acl_access}, ...) or a tar extended-header record osfarm keeps verbatim.
 */
public record Attr(byte[] name, byte[] value) implements Comparable<Attr> {
  public Attr {
    name = name.clone();
    value = value.clone();
  }

  public static Attr of(String name, byte[] value) {
    return new Attr(name.getBytes(StandardCharsets.UTF_8), value);
  }

  public String nameString() {
    return new String(name, StandardCharsets.UTF_8);
  }

  @Override
  public byte[] name() {
    return name.clone();
  }

  @Override
  public byte[] value() {
    return value.clone();
  }

  /** The name without copying; callers must not modify it. */
  byte[] nameRef() {
    return name;
  }

  /** The value without copying; callers must not modify it. */
  byte[] valueRef() {
    return value;
  }

  @Override
  public int compareTo(Attr o) {
    return Arrays.compareUnsigned(name, o.name);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Attr a && Arrays.equals(name, a.name) && Arrays.equals(value, a.value);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(name) + Arrays.hashCode(value);
  }

  @Override
  public String toString() {
    return nameString() + "=" + Bytes.escape(value);
  }
}
