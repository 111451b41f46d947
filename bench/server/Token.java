// Creates a service token for the benchmark: java -cp CLASSPATH Token.java DB NAME
import java.nio.file.Path;
import org.osfarm.server.TokenStore;

public class Token {
  public static void main(String[] a) {
    try (TokenStore t = TokenStore.open(Path.of(a[0]))) {
      System.out.println(t.create(a[1]));
    }
  }
}
