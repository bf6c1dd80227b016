import ALSTapServer
import ALSTapSystem
import ArgumentParser

/// `--server` (else `$ALSTAP_SERVER`, else a local `alstap serve`), shared by the client commands.
struct ServerOption: ParsableArguments {
    /// A local `alstap serve` on its default HTTP port.
    static let defaultServer = "http://127.0.0.1:\(ServeSettings.server.httpListen.port)"

    @Option(help: "alstap's HTTP address (default $ALSTAP_SERVER, else \(defaultServer)).")
    var server: String?

    func validate() throws {
        if TapClient(server: url(), token: nil) == nil {
            throw ValidationError("--server must look like http://HOST:PORT, not \"\(url())\"")
        }
    }

    func url(environment: Environment = .process) -> String {
        server ?? environment["ALSTAP_SERVER"] ?? Self.defaultServer
    }
}

/// `--token-file` (else `$ALSTAP_TOKEN`), shared by the client commands. A group of its own so
/// that each command's help keeps it where it always was.
struct TokenOption: ParsableArguments {
    @Option(help: ArgumentHelp("A file holding the server's bearer token (default: $ALSTAP_TOKEN).", valueName: "path"))
    var tokenFile: String?

    /// The bearer token to send, from --token-file or $ALSTAP_TOKEN.
    func token(environment: Environment = .process) throws -> String? {
        guard let tokenFile else { return environment["ALSTAP_TOKEN"] }
        return try TokenFile.read(tokenFile, flag: "--token-file")
    }
}
