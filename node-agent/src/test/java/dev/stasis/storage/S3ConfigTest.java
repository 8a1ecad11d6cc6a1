package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class S3ConfigTest {
  @TempDir Path tmp;

  @Test
  void environmentWinsThenSecretDirThenCredentialsFile() throws IOException {
    Path secret = Files.createDirectories(tmp.resolve("secret"));
    Files.writeString(secret.resolve("AWS_ACCESS_KEY_ID"), "dir-ak\n");
    Files.writeString(secret.resolve("AWS_SECRET_ACCESS_KEY"), "dir-sk\n");
    Path creds = tmp.resolve("credentials");
    Files.writeString(
        creds,
        "[default]\naws_access_key_id = def-ak\naws_secret_access_key = def-sk\n"
            + "[other]\naws_access_key_id=o-ak\naws_secret_access_key=o-sk\n");

    S3Config env =
        S3Config.fromEnvironment(
            null,
            null,
            false,
            null,
            Map.of(
                "AWS_ACCESS_KEY_ID",
                "env-ak",
                "AWS_SECRET_ACCESS_KEY",
                "env-sk",
                S3Config.CREDENTIALS_DIR_ENV,
                secret.toString(),
                S3Config.ENDPOINT_ENV,
                "http://127.0.0.1:9"));
    assertEquals("env-ak", env.accessKey());
    assertEquals("http://127.0.0.1:9", env.endpoint());
    assertEquals("us-east-1", env.region());

    S3Config dir =
        S3Config.fromEnvironment(
            "http://x:1",
            "eu-west-1",
            true,
            null,
            Map.of(S3Config.CREDENTIALS_DIR_ENV, secret.toString()));
    assertEquals("dir-ak", dir.accessKey());
    assertEquals("dir-sk", dir.secretKey());
    assertEquals("eu-west-1", dir.region());
    assertTrue(dir.virtualHost());

    S3Config file =
        S3Config.fromEnvironment(
            null,
            null,
            false,
            null,
            Map.of("AWS_SHARED_CREDENTIALS_FILE", creds.toString(), "AWS_PROFILE", "other"));
    assertEquals("o-ak", file.accessKey());
    assertEquals("o-sk", file.secretKey());
    assertEquals("https://s3.amazonaws.com", file.endpointOrDefault());
    assertFalse(file.toString().contains("o-sk"), "the secret is never printed");

    StorageException none =
        assertThrows(
            StorageException.class,
            () ->
                S3Config.fromEnvironment(
                    null,
                    null,
                    false,
                    null,
                    Map.of("AWS_SHARED_CREDENTIALS_FILE", tmp.resolve("nope").toString())));
    assertTrue(none.getMessage().startsWith("no S3 credentials"), none.getMessage());
  }
}
