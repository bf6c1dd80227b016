import ArgumentParser

@main
struct AlsTap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alstap",
        abstract: "A live traffic tap for Envoy access logs (gRPC AccessLogService).",
        subcommands: [Serve.self, Tap.self, Top.self],
        defaultSubcommand: Serve.self)
}
