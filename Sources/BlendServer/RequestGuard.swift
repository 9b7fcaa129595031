import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Which host names and page origins the server answers to.
///
/// A local server is reachable from any web page the user opens: a hostile page can post
/// forms to it (cross-site requests) or, by pointing its own domain at 127.0.0.1 (DNS
/// rebinding), even read its answers. Both are refused here: the `Host` header must name this
/// server (a loopback name, the bound address, an IP literal when bound to the network, or an
/// extra name given on the command line), and a request that carries an `Origin` must come
/// from a page of this server. Requests without `Origin` (curl, scripts) are allowed.
final class AllowedHosts: Sendable {
    let names: Set<String>
    /// Bound to a non-loopback address: any IP literal is accepted (rebinding needs a name).
    let acceptsIPLiterals: Bool
    /// The port the server listens on, once known (0 until then: any port is accepted).
    let port: Atomic<Int>

    init(configuration: ServerConfiguration) {
        var names: Set<String> = ["localhost", "127.0.0.1", "::1"]
        names.insert(Self.bare(configuration.host.lowercased()))
        for extra in configuration.extraAllowedHosts { names.insert(Self.bare(extra.lowercased())) }
        self.names = names
        acceptsIPLiterals = !configuration.isLoopback
        port = Atomic(configuration.port)
    }

    /// `[::1]` → `::1`.
    static func bare(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    /// Splits `host[:port]` (IPv6 in brackets).
    static func split(_ authority: String) -> (host: String, port: Int?) {
        let lower = authority.lowercased()
        if lower.hasPrefix("[") {
            guard let close = lower.firstIndex(of: "]") else { return (lower, nil) }
            let host = String(lower[lower.index(after: lower.startIndex)..<close])
            let rest = lower[lower.index(after: close)...]
            return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) : nil)
        }
        if let colon = lower.lastIndex(of: ":"), lower.firstIndex(of: ":") == colon {
            return (String(lower[..<colon]), Int(lower[lower.index(after: colon)...]))
        }
        return (lower, nil)
    }

    static func isIPLiteral(_ host: String) -> Bool {
        if host.contains(":") { return host.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    func allowsHost(_ authority: String) -> Bool {
        let host = Self.split(authority).host
        return names.contains(host) || host.hasPrefix("127.") && Self.isIPLiteral(host) || acceptsIPLiterals && Self.isIPLiteral(host)
    }

    func allowsOrigin(_ origin: String) -> Bool {
        guard let url = URL(string: origin), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased()
        else { return false }
        let bareHost = Self.bare(host)
        guard names.contains(bareHost) || bareHost.hasPrefix("127.") && Self.isIPLiteral(bareHost)
                || acceptsIPLiterals && Self.isIPLiteral(bareHost) else { return false }
        let listening = port.load(ordering: .relaxed)
        let originPort = url.port ?? (scheme == "https" ? 443 : 80)
        return listening == 0 || originPort == listening
    }
}

/// Refuses requests that fail ``AllowedHosts`` with 403 and a message saying why.
struct RequestGuard<Context: RequestContext>: RouterMiddleware {
    let allowed: AllowedHosts

    static var secFetchSite: HTTPField.Name { HTTPField.Name("Sec-Fetch-Site")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let authority = request.head.authority else {
            throw HTTPError(.forbidden, message: "the request names no host; blend serve answers only requests for itself")
        }
        guard allowed.allowsHost(authority) else {
            throw HTTPError(.forbidden, message: "blend serve does not answer requests for \"\(authority)\" (a guard against DNS rebinding); "
                                + "open it as http://127.0.0.1:\(allowed.port.load(ordering: .relaxed))/ or start it with --allow-host \(AllowedHosts.split(authority).host)")
        }
        let reads = request.method == .get || request.method == .head
        if let origin = request.headers[.origin], !(reads && origin == "null") {
            guard allowed.allowsOrigin(origin) else {
                throw HTTPError(.forbidden, message: "requests from pages of \(origin) are refused: only blend serve's own page may use its API")
            }
        }
        if !reads, request.headers[Self.secFetchSite] == "cross-site" {
            throw HTTPError(.forbidden, message: "cross-site requests are refused: only blend serve's own page may use its API")
        }
        return try await next(request, context)
    }
}

/// Turns ``ServerError`` into its status with a JSON body `{"error": {"message": ...}}`, and
/// any other error into a 500 with its description, so the page always has a message to show.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServerError {
            throw HTTPError(HTTPResponse.Status(code: error.statusCode), message: error.description)
        } catch let error as HTTPError {
            if error.body == nil {
                let message = error.status == .notFound ? "no such page or API endpoint: \(request.method) \(request.uri.path)"
                    : error.status == .contentTooLarge ? "the upload is too large"
                    : error.status.reasonPhrase
                throw HTTPError(error.status, headers: error.headers, message: message)
            }
            throw error
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            context.logger.error("request failed: \(error)")
            throw HTTPError(.internalServerError, message: "internal error: \(error)")
        }
    }
}
