import HTTPTypes
import Hummingbird
import NIOCore

/// The one page: vanilla HTML, CSS and JavaScript under `Page/`, compiled into the binary
/// (SwiftPM's `embedInCode`), so `blend serve` needs no files beside it and no build step.
enum PageAssets {
    struct Asset: Sendable {
        var path: String
        var type: String
        var bytes: [UInt8]
    }

    static let assets: [Asset] = [
        Asset(path: "/", type: "text/html; charset=utf-8", bytes: PackageResources.index_html),
        Asset(path: "/app.js", type: "text/javascript; charset=utf-8", bytes: PackageResources.app_js),
        Asset(path: "/style.css", type: "text/css; charset=utf-8", bytes: PackageResources.style_css),
        Asset(path: "/favicon.svg", type: "image/svg+xml", bytes: PackageResources.favicon_svg),
    ]

    /// Only this page's own scripts, styles and images; no framing by other sites.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
    ]

    /// `GET` of each asset, with the security headers; mounted at the root.
    static var endpoints: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        for asset in assets {
            let buffer = ByteBuffer(bytes: asset.bytes)
            var fields = securityHeaders
            fields[.contentType] = asset.type
            fields[.cacheControl] = "no-cache"
            let headers = fields
            routes.get(RouterPath(asset.path)) { _, _ in
                Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
            }
        }
        return routes
    }
}
