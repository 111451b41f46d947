package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;
import org.osfarm.core.Digest;
import org.osfarm.core.testing.Programs;

/**
 * Debian's chromium walks the web UI of a real service with the real builder (mmdebstrap): a simple
 * request to a finished download, package search over the mirror's index, an XML upload, repository
 * browsing and a diff. One real build is shared by the walk.
 */
@Tag("slow")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class BrowserWalkTest {
  @TempDir static Path tmp;
  static OsfarmServer server;
  static WebDriver browser;
  static String base;
  static String firstSnapshot;

  @BeforeAll
  static void start() throws Exception {
    Programs.require("mmdebstrap");
    Programs.require("chromium");
    Programs.require("chromedriver");
    // the build namespace's root (unprivileged when we are root) must reach the cache
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
    ServerFixture.demoRepository(tmp.resolve("repo"), tmp);
    Path run = tmp.resolve("build-cache");
    Path debs = Path.of("/var/tmp/osfarm-build-test/debs"); // shared with the build module's tests
    Files.createDirectories(run);
    Files.createDirectories(debs);
    Files.createSymbolicLink(run.resolve("debs"), debs);
    server =
        new OsfarmServer(ServerFixture.settings(tmp).withBuildCache(run).withUploadLimit(1 << 20))
            .start();
    base = server.url();
    String token = server.tokens().create("browser");

    ChromeOptions o = new ChromeOptions();
    o.setBinary("/usr/bin/chromium");
    o.addArguments(
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--user-data-dir=" + Files.createTempDirectory(tmp, "chromium-profile"));
    ChromeDriverService svc =
        new ChromeDriverService.Builder()
            .usingDriverExecutable(new File("/usr/bin/chromedriver"))
            .usingAnyFreePort()
            .build();
    browser = new ChromeDriver(svc, o);
    browser.manage().timeouts().pageLoadTimeout(Duration.ofMinutes(2));

    // sign in with the token
    browser.get(base + "/login");
    browser.findElement(By.id("token")).sendKeys(token);
    browser.findElement(By.id("login-submit")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> !d.findElements(By.className("user")).isEmpty());
    assertThat(browser.findElement(By.className("user")).getText()).isEqualTo("browser");
  }

  @AfterAll
  static void stop() {
    if (browser != null) {
      browser.quit();
    }
    if (server != null) {
      server.stop();
    }
  }

  static WebDriverWait waitUp(Duration d) {
    return new WebDriverWait(browser, d);
  }

  static String awaitJobDone(Duration timeout) {
    // the status is re-rendered by htmx every second: elements go stale, so look them up afresh
    waitUp(timeout)
        .ignoring(StaleElementReferenceException.class)
        .until(
            d -> {
              String st = d.findElement(By.id("job-state")).getText();
              if (st.equals("failed")) {
                throw new AssertionError(
                    "build failed: " + d.findElement(By.id("job-error")).getText());
              }
              return st.equals("done");
            });
    return waitUp(Duration.ofSeconds(10))
        .ignoring(StaleElementReferenceException.class)
        .until(d -> d.findElement(By.id("download")).getAttribute("href"));
  }

  static String snapshotHref() {
    return waitUp(Duration.ofSeconds(10))
        .ignoring(StaleElementReferenceException.class)
        .until(d -> d.findElement(By.id("snapshot-link")).getAttribute("href"));
  }

  static String text(String id) {
    return waitUp(Duration.ofSeconds(10))
        .ignoring(StaleElementReferenceException.class)
        .until(d -> d.findElement(By.id(id)).getText());
  }

  @Test
  @Order(1)
  void simpleRequestToAFinishedDownload() throws Exception {
    browser.get(base + "/");
    browser.findElement(By.id("name")).sendKeys("walk");
    new Select(browser.findElement(By.id("class"))).selectByValue("debian-bookworm");
    new Select(browser.findElement(By.id("arch"))).selectByVisibleText("amd64");
    new Select(browser.findElement(By.id("format"))).selectByVisibleText("tar.gz");
    browser.findElement(By.id("async")).click();
    browser.findElement(By.id("submit")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> d.getCurrentUrl().contains("/jobs/"));
    String href = awaitJobDone(Duration.ofMinutes(8));
    assertThat(text("job-status")).contains("layer");

    HttpResponse<byte[]> dl = new Http(base).getBytes(href.substring(base.length()));
    assertThat(dl.statusCode()).isEqualTo(200);
    String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(dl.body()));
    assertThat(text("job-status")).contains(sha);
    assertThat(dl.body().length).isGreaterThan(10_000_000); // a real Debian system
    firstSnapshot = snapshotHref();
    // the image is in the repository, with its packages
    browser.get(firstSnapshot);
    waitUp(Duration.ofSeconds(30)).until(d -> !d.findElements(By.id("packages")).isEmpty());
    assertThat(browser.findElement(By.id("packages")).getText()).contains("systemd");
  }

  @Test
  @Order(2)
  void packageSearchAsYouType() {
    browser.get(base + "/request/advanced");
    new Select(browser.findElement(By.id("class"))).selectByValue("debian-bookworm");
    browser.findElement(By.id("package-search")).sendKeys("openssh-serv");
    WebElement add =
        waitUp(Duration.ofMinutes(3))
            .until(
                d ->
                    d.findElement(
                        By.cssSelector(
                            "#package-results .add-package[data-name='openssh-server']")));
    assertThat(browser.findElement(By.id("package-results")).getText()).contains("openssh-server");
    add.click();
    assertThat(browser.findElement(By.id("packages")).getAttribute("value"))
        .contains("openssh-server");
  }

  @Test
  @Order(3)
  void xmlUploadBuildsFromTheCache() throws Exception {
    // a malformed description is refused with the problem shown, and nothing is queued
    browser.get(base + "/upload");
    browser
        .findElement(By.id("spec-text"))
        .sendKeys("<image name=\"walk\" class=\"debian-bookworm\">");
    browser.findElement(By.id("upload-submit")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> !d.findElements(By.id("problem-detail")).isEmpty());
    assertThat(browser.findElement(By.id("problem-detail")).getText()).contains("malformed");

    Path xml = tmp.resolve("walk.xml");
    Files.writeString(xml, "<image name=\"walk\" class=\"debian-bookworm\" arch=\"amd64\"/>\n");
    browser.get(base + "/upload");
    browser.findElement(By.id("spec-file")).sendKeys(xml.toString());
    browser.findElement(By.id("upload-submit")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> d.getCurrentUrl().contains("/jobs/"));
    awaitJobDone(Duration.ofMinutes(3));
    // the same spec: every layer came from the cache, the same snapshot
    assertThat(text("job-status")).contains("0 layers built");
    assertThat(snapshotHref()).isEqualTo(firstSnapshot);
  }

  @Test
  @Order(4)
  void repositoryBrowseAndDiff() {
    browser.get(base + "/repo");
    assertThat(browser.findElement(By.id("refs")).getText()).contains("images/demo", "images/walk");
    browser.findElement(By.linkText("images/demo")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> !d.findElements(By.id("history")).isEmpty());
    assertThat(browser.findElements(By.cssSelector("#history .snapshot-link"))).hasSize(2);
    browser.findElements(By.cssSelector("#history .snapshot-link")).getFirst().click();
    waitUp(Duration.ofSeconds(30)).until(d -> !d.findElements(By.id("packages")).isEmpty());
    assertThat(browser.findElement(By.id("packages")).getText()).contains("curl", "7.88.1-10");
    assertThat(browser.findElements(By.cssSelector("#downloads .download")))
        .extracting(WebElement::getText)
        .containsExactly("tar.gz", "tar.zst", "tar", "raw", "qcow2", "oci");
    browser.findElement(By.id("browse")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> !d.findElements(By.linkText("etc/")).isEmpty());
    browser.findElement(By.linkText("etc/")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> d.getCurrentUrl().contains("path=etc"));
    assertThat(browser.findElement(By.id("tree")).getText()).contains("motd");

    browser.get(base + "/repo/refs/images/demo");
    browser.findElement(By.id("diff-submit")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> !d.findElements(By.id("file-changes")).isEmpty());
    assertThat(browser.findElement(By.id("file-changes")).getText())
        .contains("etc/motd", "usr/bin/curl");
    assertThat(browser.findElement(By.id("package-changes")).getText())
        .contains("curl", "hello", "2.10-4");
  }

  @Test
  @Order(5)
  void aRootPasswordReachesTheImageOnlyAsAHash() throws Exception {
    String password = "Walk-the-farm-7";
    browser.get(base + "/upload");
    browser
        .findElement(By.id("spec-text"))
        .sendKeys(
            "<image name=\"walkpw\" class=\"debian-bookworm\" arch=\"amd64\">"
                + "<rootPassword>"
                + password
                + "</rootPassword></image>");
    new Select(browser.findElement(By.id("format"))).selectByVisibleText("oci");
    browser.findElement(By.id("upload-submit")).click();
    waitUp(Duration.ofSeconds(30)).until(d -> d.getCurrentUrl().contains("/jobs/"));
    String download = awaitJobDone(Duration.ofMinutes(8));
    String href = snapshotHref();

    // the job's output is an OCI archive skopeo reads, with one layer per osfarm layer
    Path oci = tmp.resolve("walkpw.oci.tar");
    HttpResponse<Path> dl =
        Http.CLIENT.send(
            new Http(base).req(download.substring(base.length())).GET().build(),
            HttpResponse.BodyHandlers.ofFile(oci));
    assertThat(dl.statusCode()).isEqualTo(200);
    assertThat(dl.headers().firstValue("Content-Disposition").orElseThrow())
        .contains("walkpw.oci.tar");
    String inspect = Programs.run(tmp, "skopeo", "inspect", "oci-archive:" + oci);
    assertThat(inspect).contains("\"Architecture\": \"amd64\"");
    assertThat(OsfarmServer.JSON.readTree(inspect).get("Layers").size()).isGreaterThan(1);
    Files.delete(oci);
    Digest snap = Digest.fromHex(href.substring(href.lastIndexOf('/') + 1));

    // /etc/shadow of the built image holds a SHA-512 crypt hash that verifies against the password
    String shadow;
    try (var in =
        server
            .repository()
            .openContent(server.repository().lookupFile(snap, "etc/shadow".getBytes()))) {
      shadow = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
    String hash =
        shadow.lines().filter(l -> l.startsWith("root:")).findFirst().orElseThrow().split(":")[1];
    assertThat(hash).startsWith("$6$");
    assertThat(ShaCrypt.verify(password, hash)).isTrue();
    String salt = hash.split("\\$")[2];
    assertThat(Programs.run(tmp, "openssl", "passwd", "-6", "-salt", salt, password).strip())
        .isEqualTo(hash);

    // the password is nowhere in the job database, the service's data or the snapshot metadata
    assertThat(server.repository().readSnapshot(snap).metadata().toString())
        .doesNotContain(password);
    byte[] needle = password.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    Settings st = server.settings;
    try (var files = Files.walk(tmp)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        if (f.getFileName().toString().startsWith("server.db") || f.startsWith(st.dataDir())) {
          if (Files.size(f) < (64 << 20)) { // outputs are images; the job rows and logs are small
            assertThat(JobQueueTest.indexOf(Files.readAllBytes(f), needle))
                .as("the password in %s", f)
                .isEqualTo(-1);
          }
        }
      }
    }
  }
}
