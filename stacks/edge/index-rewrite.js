// Serves /guide/ from /guide/index.html: S3 through origin access control has no index
// documents below the root, so the viewer request is rewritten at the edge.
function handler(event) {
    var request = event.request;
    if (request.uri.endsWith('/')) {
        request.uri += 'index.html';
    } else if (!request.uri.split('/').pop().includes('.')) {
        request.uri += '/index.html';
    }
    return request;
}
