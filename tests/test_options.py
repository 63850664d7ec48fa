"""Unit tests for chatd.tap.Options: SPEC.md's Running table (options, environment, defaults)."""

import os

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from chatd.config import PACKAGED_STATIC
from chatd.ratelimit import Rate
from chatd.tap import Options, absolute_listen

SECRET = "x" * 32


def parse(argv=(), **environ):
    """The Config that ``twistd chatd ARGV`` would build in this environment."""
    options = Options(environ=environ)
    options.parseOptions(list(argv))
    return options.config


class DefaultsTests(SynchronousTestCase):
    """``twistd -n chatd`` with nothing set."""

    def test_defaults(self):
        """Every option has SPEC.md's default."""
        config = parse()
        self.assertEqual(config.listen, ["tcp:8080"])
        self.assertEqual(config.data_dir, os.path.join(os.getcwd(), "chatd-data"))
        self.assertEqual(config.token_ttl, 3600)
        self.assertEqual(config.auth_rate, Rate(5, 20))
        self.assertEqual(config.socket_rate, Rate(20, 50))
        self.assertEqual(config.max_upload, 26214400)
        self.assertEqual(config.static, PACKAGED_STATIC)
        self.assertEqual(config.allowed_origins, [])
        self.assertIsNone(config.mongo)
        self.assertIsNone(config.redis)
        self.assertIsNone(config.jwt_secret)

    def test_empty_environment_variable(self):
        """An empty variable counts as unset."""
        self.assertEqual(parse(CHATD_TOKEN_TTL="", CHATD_LISTEN="").token_ttl, 3600)


class EnvironmentTests(SynchronousTestCase):
    """Each option may come from its CHATD_* variable."""

    def test_environment_used(self):
        """Values come from the environment when no option is given."""
        config = parse(
            CHATD_LISTEN="tcp:9000 ssl:8443:privateKey=k.pem:certKey=c.pem",
            CHATD_TOKEN_TTL="60",
            CHATD_MONGO_URI="mongodb://db:27017/chat",
            CHATD_AUTH_RATE="0",
            CHATD_SOCKET_RATE="30/m,5",
            CHATD_DATA_DIR="/var/lib/chatd",
            CHATD_JWT_SECRET=SECRET,
            CHATD_ALLOWED_ORIGINS="https://a.example, https://b.example ,",
            CHATD_MAX_UPLOAD="1024",
        )
        here = os.getcwd()
        self.assertEqual(config.listen, ["tcp:9000", f"ssl:8443:privateKey={here}/k.pem:certKey={here}/c.pem"])
        self.assertEqual(config.token_ttl, 60)
        self.assertEqual(config.mongo, "mongodb://db:27017/chat")
        self.assertTrue(config.auth_rate.unlimited)
        self.assertEqual(config.socket_rate, Rate(0.5, 5))
        self.assertEqual(config.data_dir, "/var/lib/chatd")
        self.assertEqual(config.jwt_secret, SECRET.encode())
        self.assertEqual(config.allowed_origins, ["https://a.example", "https://b.example"])
        self.assertEqual(config.max_upload, 1024)

    def test_option_wins(self):
        """A command-line option beats its environment variable."""
        config = parse(
            ["--token-ttl", "120", "--listen", "tcp:7000", "--auth-rate", "1/s,2", "--mongo", "mongodb://cli/x"],
            CHATD_TOKEN_TTL="60",
            CHATD_LISTEN="tcp:9000",
            CHATD_AUTH_RATE="0",
            CHATD_MONGO_URI="mongodb://env/x",
        )
        self.assertEqual(config.token_ttl, 120)
        self.assertEqual(config.listen, ["tcp:7000"])
        self.assertEqual(config.auth_rate, Rate(1, 2))
        self.assertEqual(config.mongo, "mongodb://cli/x")

    def test_listen_repeatable(self):
        """``--listen`` may be given several times; every endpoint is kept in order."""
        config = parse(["--listen", "tcp:8080", "--listen", "tcp:8081:interface=127.0.0.1"])
        self.assertEqual(config.listen, ["tcp:8080", "tcp:8081:interface=127.0.0.1"])


class RefusalTests(SynchronousTestCase):
    """Bad settings stop ``twistd`` with a usage error instead of starting."""

    def test_short_secret(self):
        """A JWT secret under 32 bytes is refused, from the option or the environment; 32 is accepted."""
        self.assertRaises(UsageError, parse, ["--jwt-secret", "x" * 31])
        self.assertRaises(UsageError, parse, CHATD_JWT_SECRET="short")
        self.assertEqual(parse(["--jwt-secret", SECRET]).jwt_secret, SECRET.encode())

    def test_bad_token_ttl(self):
        """The TTL must be a positive whole number of seconds."""
        for value in ["0", "-5", "1.5", "hour", ""]:
            with self.subTest(value=value):
                self.assertRaises(UsageError, parse, ["--token-ttl", value])
        self.assertRaises(UsageError, parse, CHATD_TOKEN_TTL="ten")

    def test_bad_rates(self):
        """A rate that does not parse is refused for both limits."""
        for argv in [["--auth-rate", "fast"], ["--auth-rate", "5/s"], ["--socket-rate", "5/h,1"]]:
            with self.subTest(argv=argv):
                self.assertRaises(UsageError, parse, argv)

    def test_bad_mongo_uri(self):
        """``--mongo`` must be a mongodb:// URI."""
        for uri in ["http://db:27017", "db:27017", "redis://db"]:
            with self.subTest(uri=uri):
                self.assertRaises(UsageError, parse, ["--mongo", uri])

    def test_bad_redis_url(self):
        """``--redis`` must be a redis://, rediss:// or unix:// URL naming a host (or a socket) and a numeric db."""
        for url in ["http://cache:6379", "cache:6379", "redis://", "redis://cache:99999/0", "redis://cache/zero",
                    "unix://relative/path", "redis://cache/0?timeout=3"]:
            with self.subTest(url=url):
                self.assertRaises(UsageError, parse, ["--redis", url])

    def test_bad_redis_url_message_hides_the_password(self):
        """A refused ``--redis`` URL is not repeated in the message: it may hold a password."""
        error = self.assertRaises(UsageError, parse, ["--redis", "redis://:hunter2-secret@cache:6379/x"])
        self.assertNotIn("hunter2-secret", str(error))

    def test_redis_is_accepted(self):
        """``--redis`` (or CHATD_REDIS_URL) is kept as given in the Config; the option wins over the variable."""
        for args, env, expected in (
            (["--redis", "redis://:pw@cache:6379/2"], {}, "redis://:pw@cache:6379/2"),
            ([], {"CHATD_REDIS_URL": "rediss://cache.example:6380/0"}, "rediss://cache.example:6380/0"),
            (["--redis", "unix:///run/redis.sock?db=1"], {"CHATD_REDIS_URL": "redis://other:6379/0"},
             "unix:///run/redis.sock?db=1"),
        ):
            with self.subTest(args=args, env=env):
                self.assertEqual(parse(args, **env).redis, expected)

    def test_static_not_a_directory(self):
        """``--static`` must name an existing directory."""
        missing = self.mktemp()
        self.assertRaises(UsageError, parse, ["--static", missing])
        with open(missing, "w") as f:
            f.write("not a directory")
        self.assertRaises(UsageError, parse, ["--static", missing])

    def test_static_directory(self):
        """An existing directory is served."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.assertEqual(parse(["--static", directory]).static, directory)


class CapsTests(SynchronousTestCase):
    """The caps of issue 9 (docs/BEHAVIOUR.md, Limits): defaults, environment, options, refusals."""

    def test_defaults_a_small_team_never_meets(self):
        """32 sockets a user, 256 an address, 10 handshakes/s (burst 50) an address, 1 GiB of uploads an
        hour a user, 500 rooms a user."""
        config = parse()
        self.assertEqual((config.max_sockets_per_user, config.max_sockets_per_address, config.handshake_rate,
                          config.upload_quota, config.max_rooms_per_user), (32, 256, Rate(10, 50), 1 << 30, 500))

    def test_from_environment_and_options(self):
        """Each cap has its CHATD_* variable, and the option wins."""
        config = parse(["--max-rooms-per-user", "7"], CHATD_MAX_SOCKETS_PER_USER="4", CHATD_MAX_SOCKETS_PER_ADDRESS="9",
                       CHATD_HANDSHAKE_RATE="0", CHATD_UPLOAD_QUOTA="1000", CHATD_MAX_ROOMS_PER_USER="3")
        self.assertEqual((config.max_sockets_per_user, config.max_sockets_per_address, config.upload_quota,
                          config.max_rooms_per_user), (4, 9, 1000, 7))
        self.assertTrue(config.handshake_rate.unlimited)

    def test_nonsense_is_refused(self):
        """A cap that is not a whole number from 1, or a malformed rate, stops twistd with a usage error."""
        for argv in (["--max-sockets-per-user", "0"], ["--upload-quota", "lots"], ["--handshake-rate", "fast"],
                     ["--max-rooms-per-user", "-1"], ["--max-sockets-per-address", "1.5"]):
            with self.subTest(argv=argv):
                self.assertRaises(UsageError, parse, argv)


class PathTests(SynchronousTestCase):
    """Relative paths are resolved against the working directory at start, so the embedded store's child
    (which runs elsewhere) and anything that changes directory later use the same files."""

    def test_data_dir_and_static_become_absolute(self):
        """``--data-dir`` and ``--static`` (option or environment) come out absolute; absolute ones are kept."""
        here = os.getcwd()
        static = self.mktemp()  # relative to the test's working directory
        os.makedirs(static)
        config = parse(["--data-dir", "data/../chatd-data", "--static", static])
        self.assertEqual((config.data_dir, config.static), (f"{here}/chatd-data", f"{here}/{static}"))
        config = parse(CHATD_DATA_DIR="var", CHATD_STATIC=f"./{static}")
        self.assertEqual((config.data_dir, config.static), (f"{here}/var", f"{here}/{static}"))
        self.assertEqual(parse(["--data-dir", "/srv/chatd"]).data_dir, "/srv/chatd")

    def test_admin_data_dir_becomes_absolute(self):
        """``chatd-admin --data-dir`` (and its default) is resolved the same way."""
        from chatd.cli.admin import parse_args

        self.patch(os, "environ", {})  # no CHATD_DATA_DIR from the environment running the tests
        here = os.getcwd()
        self.assertEqual(parse_args(["--data-dir", "d", "promote", "alice"]).data_dir, f"{here}/d")
        self.assertEqual(parse_args(["promote", "alice"]).data_dir, f"{here}/chatd-data")

    def test_ssl_key_files_become_absolute(self):
        """Every file name of an ``ssl:`` listener is resolved; the rest of the string is unchanged."""
        here = os.getcwd()
        config = parse(["--listen", "tcp:8080:interface=127.0.0.1", "--listen",
                        "ssl:8443:privateKey=tls/key.pem:certKey=/etc/tls/cert.pem:extraCertChain=chain.pem"
                        ":dhParameters=dh.pem:sslmethod=TLSv1_2_METHOD:interface=::1"])
        self.assertEqual(config.listen, [
            "tcp:8080:interface=127.0.0.1",
            f"ssl:8443:privateKey={here}/tls/key.pem:certKey=/etc/tls/cert.pem:extraCertChain={here}/chain.pem"
            f":dhParameters={here}/dh.pem:sslmethod=TLSv1_2_METHOD:interface=::1",
        ])

    def test_escapes_are_kept_and_written(self):
        """Twisted's backslash escapes survive: an escaped colon in a name, and in the directory, still parse."""
        from twisted.internet.endpoints import _parse

        description = r"ssl:8443:interface=\:\:1:privateKey=C\:keys/a\\b=c.pem:caCertsDir=ca"
        resolved = absolute_listen(description, "/run:dir")
        self.assertEqual(resolved, r"ssl:8443:interface=\:\:1:privateKey=/run\:dir/C\:keys/a\\b=c.pem"
                                   r":caCertsDir=/run\:dir/ca")
        args, kwargs = _parse(resolved)
        self.assertEqual((args, kwargs), (["ssl", "8443"], {
            "interface": "::1", "privateKey": r"/run:dir/C:keys/a\b=c.pem", "caCertsDir": "/run:dir/ca"}))

    def test_other_endpoints_untouched(self):
        """Only ``ssl:`` endpoints are rewritten; keys that are not file names are left as written."""
        for description in ["tcp:8080", r"unix:/tmp/chat\:d.sock", "tcp:0:privateKey=k.pem",
                            "ssl:8443:privateKey=/abs/k.pem", "ssl:8443:interface=127.0.0.1"]:
            with self.subTest(description=description):
                self.assertEqual(absolute_listen(description, "/elsewhere"), description)
