package org.osfarm.build;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;
import org.osfarm.core.Digest;

/** Canonical JSON (sorted keys, no spaces) and digests of it: the basis of every cache key. */
final class Canonical {
  static final ObjectMapper JSON =
      new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);

  private Canonical() {}

  static String json(Object o) {
    try {
      return JSON.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  static Map<String, Object> parse(String json) {
    try {
      return JSON.readValue(json, new TypeReference<TreeMap<String, Object>>() {});
    } catch (JsonProcessingException e) {
      return Map.of();
    }
  }

  static Digest digest(Object o) {
    return Digest.of(json(o).getBytes(StandardCharsets.UTF_8));
  }

  static String sha(String s) {
    return s == null ? null : "sha256:" + Digest.of(s.getBytes(StandardCharsets.UTF_8)).hex();
  }
}
