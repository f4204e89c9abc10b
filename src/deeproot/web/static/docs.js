// Swagger UI on /docs when its CDN is reachable; the server-rendered endpoint table stays otherwise.
(function () {
  "use strict";
  window.addEventListener("load", function () {
    if (!window.SwaggerUIBundle) return;
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css";
    document.head.appendChild(css);
    window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
  });
})();
