package org.osfarm.mount;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Background mode, as sshfs does it: start this same program again with {@code --foreground},
 * detached ({@code setsid}, output to a log in the cache directory), and return once the mount is
 * ready, or report why the child failed.
 */
public final class Background {
  private Background() {}

  /**
   * Starts {@code mainClass args... --foreground} in a new session and waits until {@code
   * expectMounted} shows up in the mount table.
   *
   * @param log where the child's output goes (shown when it fails)
   * @return the child's pid
   * @throws IOException when the child exits or the mount does not appear in {@code timeoutMs}
   */
  public static long start(
      String mainClass,
      List<String> args,
      Path mountpoint,
      String expectedType,
      Path log,
      long timeoutMs)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    for (String setsid : List.of("/usr/bin/setsid", "/bin/setsid")) {
      if (Files.isExecutable(Path.of(setsid))) {
        cmd.add(setsid);
        break;
      }
    }
    cmd.add(ProcessHandle.current().info().command().orElse(javaBinary()));
    cmd.addAll(
        javaArguments(
            mainClass,
            System.getProperty("java.class.path"),
            jvmOptions(),
            Background.class.getModule().isNativeAccessEnabled()));
    cmd.addAll(args);
    cmd.add("--foreground");
    Files.createDirectories(log.toAbsolutePath().getParent());
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(ProcessBuilder.Redirect.to(log.toFile()))
            .redirectErrorStream(true);
    Process p = pb.start();
    long deadline = System.currentTimeMillis() + timeoutMs;
    while (true) {
      if (MountTable.isMounted(mountpoint, expectedType)) {
        return p.pid();
      }
      if (!p.isAlive()) {
        throw new IOException("mount failed:\n" + tail(log));
      }
      if (System.currentTimeMillis() > deadline) {
        p.destroy();
        throw new IOException(
            "the mount did not become ready in " + timeoutMs / 1000 + " s:\n" + tail(log));
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        p.destroy();
        throw new IOException("interrupted", e);
      }
    }
  }

  /**
   * The child's JVM options and main class. A class path that is one jar whose manifest names
   * {@code mainClass} runs as {@code -jar}, so that the manifest grants native access as it did to
   * this process (a plain {@code -cp} start would not: FUSE and libcrypto calls would be warned
   * about and libcrypto's SHA-256 not used). Otherwise {@code -cp}, with {@code
   * --enable-native-access=ALL-UNNAMED} added when this process has native access and its options
   * do not already say so.
   */
  static List<String> javaArguments(
      String mainClass, String classPath, List<String> jvmOptions, boolean nativeAccess) {
    List<String> a = new ArrayList<>(jvmOptions);
    if (mainClass.equals(jarMainClass(classPath))) {
      a.add("-jar");
      a.add(classPath);
      return a;
    }
    if (nativeAccess
        && jvmOptions.stream().noneMatch(o -> o.startsWith("--enable-native-access"))) {
      a.add("--enable-native-access=ALL-UNNAMED");
    }
    a.add("-cp");
    a.add(classPath);
    a.add(mainClass);
    return a;
  }

  /** The Main-Class of the jar {@code classPath} names, or null if it names anything else. */
  private static String jarMainClass(String classPath) {
    if (classPath == null
        || classPath.contains(java.io.File.pathSeparator)
        || !classPath.endsWith(".jar")
        || !Files.isRegularFile(Path.of(classPath))) {
      return null;
    }
    try (java.util.jar.JarFile jar = new java.util.jar.JarFile(classPath)) {
      java.util.jar.Manifest m = jar.getManifest();
      return m == null ? null : m.getMainAttributes().getValue("Main-Class");
    } catch (IOException e) {
      return null;
    }
  }

  /**
   * This JVM's options ({@code RuntimeMXBean.getInputArguments()}), found reflectively so that the
   * mount client needs no {@code java.management}: the boot image's jlinked runtime leaves it out
   * (it only mounts in the foreground). Without it, the child gets only native access.
   */
  static List<String> jvmOptions() {
    try {
      Object bean =
          Class.forName("java.lang.management.ManagementFactory")
              .getMethod("getRuntimeMXBean")
              .invoke(null);
      @SuppressWarnings("unchecked")
      List<String> options =
          (List<String>)
              Class.forName("java.lang.management.RuntimeMXBean")
                  .getMethod("getInputArguments")
                  .invoke(bean);
      return options;
    } catch (ReflectiveOperationException | LinkageError e) {
      return List.of("--enable-native-access=ALL-UNNAMED");
    }
  }

  private static String javaBinary() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  private static String tail(Path log) throws IOException {
    List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
  }
}
